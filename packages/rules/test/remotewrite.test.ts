import { createServer, type Server } from "node:http";
import { fromBinary } from "@bufbuild/protobuf";
import { labelsFromRecord } from "@strata/core";
import { prompbRemote, snappyDecode } from "@strata/protocol";
import { encodeWriteRequest, RemoteWriteQueue, type OutputSample } from "@strata/rules";
import { afterEach, describe, expect, it } from "vitest";

const sample = (rec: Record<string, string>, t: number, v: number, stale = false): OutputSample => ({ labels: labelsFromRecord(rec), t, v, stale });

function decode(body: Uint8Array) {
  return fromBinary(prompbRemote.WriteRequestSchema, snappyDecode(body, 1 << 24));
}

describe("remote write encoding", () => {
  it("groups samples by series, adds external labels the series lack, writes stale markers bit-exactly", () => {
    const body = encodeWriteRequest(
      [sample({ __name__: "ALERTS", alertname: "A" }, 1000, 1), sample({ __name__: "r", job: "x" }, 1000, 2.5), sample({ __name__: "ALERTS", alertname: "A" }, 2000, 0, true)],
      { cluster: "eu1", job: "rules" },
    );
    const req = fromBinary(prompbRemote.WriteRequestSchema, body);
    expect(req.timeseries.map((ts) => ts.labels.map((l) => `${l.name}=${l.value}`).join(","))).toEqual(["__name__=ALERTS,alertname=A,cluster=eu1,job=rules", "__name__=r,cluster=eu1,job=x"]);
    expect(req.timeseries[0]!.samples.map((s) => [Number(s.timestamp), s.value])).toEqual([[1000, 1], [2000, NaN]]);
    // The marker's bytes as Prometheus writes them (a JS number may quiet the NaN, so check the bytes).
    expect(Buffer.from(body).includes(Buffer.from([0x09, 0x02, 0, 0, 0, 0, 0, 0xf0, 0x7f]))).toBe(true);
    expect(req.timeseries[1]!.samples.map((s) => [Number(s.timestamp), s.value])).toEqual([[1000, 2.5]]);
  });
});

describe("remote write queue", () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  async function receiver(answer: (n: number) => number): Promise<{ url: string; got: number[]; statuses: number[] }> {
    const got: number[] = [];
    const statuses: number[] = [];
    let n = 0;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const status = answer(n++);
        statuses.push(status);
        if (status === 204) for (const ts of decode(Buffer.concat(chunks)).timeseries) for (const s of ts.samples) got.push(s.value);
        res.writeHead(status).end(status === 204 ? "" : "nope");
      });
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const addr = server.address();
    return { url: `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/api/v1/write`, got, statuses };
  }

  const queue = (url: string, maxQueueSize = 1000) =>
    new RemoteWriteQueue({ url, maxQueueSize, maxBatchSize: 2, flushIntervalMs: 10, retryMinIntervalMs: 10, retryMaxIntervalMs: 20, externalLabels: {} });

  it("retries 5xx until the receiver takes every sample, in order", async () => {
    const r = await receiver((n) => (n < 3 ? 503 : 204));
    const q = queue(r.url);
    q.write([1, 2, 3, 4, 5].map((v) => sample({ __name__: "x", i: String(v) }, 1000, v)));
    await q.close(5000);
    expect(r.got).toEqual([1, 2, 3, 4, 5]);
    expect(r.statuses.slice(0, 3)).toEqual([503, 503, 503]);
    expect(q.failedRequests).toBe(3);
    expect(q.droppedSamples).toBe(0);
  });

  it("counts what it cannot deliver: a full queue, a 4xx answer", async () => {
    const r = await receiver(() => 400);
    const q = queue(r.url, 3);
    q.write([1, 2, 3, 4, 5].map((v) => sample({ __name__: "x", i: String(v) }, 1000, v)));
    expect(q.droppedSamples).toBe(2);
    await q.close(5000);
    expect(q.droppedSamples).toBe(5);
    expect(r.got).toEqual([]);
  });
});
