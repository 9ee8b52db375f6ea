import { fromBinary } from "@bufbuild/protobuf";
import { BadDataError, type Label, type LabelLimits, validateLabels } from "@strata/core";
import { canonicalLabels, parserForRequest, type ImportFormat, type RowSink } from "@strata/formats";
import { prompbRemote, remoteWriteVersion, snappyDecode, writev2 } from "@strata/protocol";
import type { RemoteWriteFanout, SeriesRef } from "./remote-write.js";

/**
 * The agent's push receivers: remote write 1.0/2.0 and every import format insert takes,
 * relabeled and forwarded through the remote write queues like scraped data. A request is
 * accepted whole or not at all: it is parsed completely before its batch goes to the queues,
 * and the 2xx answer means the batch is in every queue file.
 */

export interface PushOptions {
  readonly maxRequestBytes: number;
  readonly maxLineBytes: number;
  readonly limits?: LabelLimits;
}

export class PushReceiver {
  rowsReceived = 0;

  constructor(
    private readonly fanout: RemoteWriteFanout,
    private readonly o: PushOptions,
  ) {}

  /** A remote write body (snappy protobuf); the version comes from Content-Type as in insert. */
  remoteWrite(body: Uint8Array, contentType: string | undefined, contentEncoding?: string): number {
    const version = remoteWriteVersion(contentType, contentEncoding);
    const raw = snappyDecode(body, this.o.maxRequestBytes);
    const decode = <T>(parse: () => T): T => {
      try {
        return parse();
      } catch (err) {
        throw new BadDataError(`cannot parse remote write ${version}.0 protobuf: ${err instanceof Error ? err.message : String(err)}`, "STRATA_PARSE_ERROR");
      }
    };
    // Each series as labels plus its samples, from either version.
    const series: { labels: Label[]; samples: readonly { timestamp: bigint; value: number }[] }[] = [];
    if (version === 2) {
      const req = decode(() => fromBinary(writev2.RequestSchema, raw));
      req.timeseries.forEach((ts, i) => {
        const labels: Label[] = [];
        for (let k = 0; k + 1 < ts.labelsRefs.length; k += 2) {
          const name = req.symbols[ts.labelsRefs[k]!];
          const value = req.symbols[ts.labelsRefs[k + 1]!];
          if (name === undefined || value === undefined) throw new BadDataError(`timeseries[${i}]: labels_refs point past the ${req.symbols.length} symbols`, "STRATA_PARSE_ERROR");
          labels.push({ name, value });
        }
        series.push({ labels, samples: ts.samples });
      });
    } else {
      for (const ts of decode(() => fromBinary(prompbRemote.WriteRequestSchema, raw)).timeseries) series.push(ts);
    }
    return this.whole(() => {
      let n = 0;
      series.forEach((s, i) => {
        const ref = this.ref(s.labels, `timeseries[${i}]`);
        if (ref === null) return;
        for (const smp of s.samples) {
          this.fanout.add(ref, Number(smp.timestamp), smp.value);
          n++;
        }
      });
      return n;
    });
  }

  /** Runs `fill` (which adds one request's samples) and queues them all, or none if it throws. */
  private whole(fill: () => number): number {
    let n: number;
    try {
      n = fill();
    } catch (err) {
      this.fanout.discard();
      throw err;
    }
    this.fanout.flush();
    this.rowsReceived += n;
    return n;
  }

  /** An import body (already decompressed): parsed whole, then queued. */
  import(
    format: ImportFormat,
    query: URLSearchParams,
    body: Uint8Array,
    contentType: string | undefined,
    pushgatewayPath?: string,
  ): number {
    const f = this.fanout;
    let current: SeriesRef | null = null;
    let n = 0;
    const sink: RowSink = {
      series: (labels) => {
        current = this.ref(labels, "");
      },
      sample: (ts, v) => {
        if (current === null) return;
        f.add(current, ts, v);
        n++;
      },
    };
    return this.whole(() => {
      const p = parserForRequest(
        { format, query, contentType, nowMs: Date.now(), maxLineBytes: this.o.maxLineBytes, maxBodyBytes: this.o.maxRequestBytes, ...(pushgatewayPath !== undefined ? { pushgatewayPath } : {}) },
        sink,
      );
      p.write(body);
      p.end();
      return n;
    });
  }

  private ref(labels: readonly Label[], where: string): SeriesRef | null {
    let norm: Label[];
    try {
      norm = canonicalLabels(labels);
      validateLabels(norm, this.o.limits);
    } catch (err) {
      if (err instanceof BadDataError && where !== "") throw new BadDataError(`${where}: ${err.message}`, err.code);
      throw err;
    }
    const r = this.fanout.ref(norm);
    if (r === null) this.fanout.droppedByRelabel++;
    return r;
  }
}
