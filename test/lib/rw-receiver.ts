import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { fromBinary } from "@bufbuild/protobuf";
import { prompbRemote, snappyDecode } from "@strata/protocol";

/**
 * A remote write 1.0 receiver on loopback for tests: decodes every request and keeps each
 * series' samples (value bits kept, so stale markers are visible). `status` makes it answer with
 * an error instead (503, 429 with Retry-After, 400, …).
 */

export interface ReceivedSeries {
  readonly labels: Record<string, string>;
  readonly samples: { ts: number; value: number; stale: boolean }[];
}

export interface Receiver {
  readonly url: string;
  readonly series: Map<string, ReceivedSeries>;
  requests: number;
  /** Requests refused because their Authorization header was not `opts.authorization`. */
  unauthorized: number;
  status: number;
  retryAfter: string | undefined;
  /** Samples received in total (duplicates counted). */
  samples(): number;
  find(match: Record<string, string>): ReceivedSeries[];
  close(): Promise<void>;
}

const STALE_BITS = 0x7ff0000000000002n;

export interface ReceiverOptions {
  /** Serve HTTPS with this certificate pair (PEM). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Answer 401 unless the Authorization header is exactly this. */
  readonly authorization?: string;
}

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const series = new Map<string, ReceivedSeries>();
  const bits = new DataView(new ArrayBuffer(8));
  const r: Receiver = {
    url: "",
    series,
    requests: 0,
    unauthorized: 0,
    status: 204,
    retryAfter: undefined,
    samples: () => [...series.values()].reduce((a, s) => a + s.samples.length, 0),
    find: (match) => [...series.values()].filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v)),
    close: () => new Promise((res) => server.close(() => res())),
  };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      r.requests++;
      if (opts.authorization !== undefined && req.headers.authorization !== opts.authorization) {
        r.unauthorized++;
        res.writeHead(401);
        res.end("wrong credentials for the test");
        return;
      }
      if (r.status >= 300) {
        res.writeHead(r.status, r.retryAfter !== undefined ? { "retry-after": r.retryAfter } : {});
        res.end("unavailable for the test");
        return;
      }
      const wr = fromBinary(prompbRemote.WriteRequestSchema, snappyDecode(Buffer.concat(chunks), 1 << 30));
      for (const ts of wr.timeseries) {
        const labels: Record<string, string> = {};
        for (const l of ts.labels) labels[l.name] = l.value;
        const key = JSON.stringify(labels);
        let s = series.get(key);
        if (s === undefined) series.set(key, (s = { labels, samples: [] }));
        for (const smp of ts.samples) {
          bits.setFloat64(0, smp.value);
          s.samples.push({ ts: Number(smp.timestamp), value: smp.value, stale: bits.getBigUint64(0) === STALE_BITS });
        }
      }
      res.writeHead(204);
      res.end();
    });
  };
  const server: Server = opts.tls !== undefined ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createServer(handler);
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", () => res()));
  const addr = server.address();
  (r as { url: string }).url = `${opts.tls !== undefined ? "https" : "http"}://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/api/v1/write`;
  return r;
}

export async function waitUntil(what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
