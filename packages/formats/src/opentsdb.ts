import type { Label } from "@strata/core";
import { METRIC_NAME_LABEL, PayloadTooLargeError } from "@strata/core";
import type { CommonParseOptions, RowSink, StreamParser } from "./common.js";
import { applyExtraLabels, excerpt, locate, parseError } from "./common.js";
import { parseFloatStrict } from "./floats.js";

export interface OpenTsdbOptions extends CommonParseOptions {
  /** Largest accepted body (VictoriaMetrics -opentsdbhttp.maxInsertRequestSize, default 32 MiB). */
  readonly maxBodyBytes?: number;
}

export const DEFAULT_OPENTSDB_MAX_BODY = 32 * 1024 * 1024;

/**
 * OpenTSDB HTTP `/api/put`: one JSON object or an array of them,
 * `{"metric":"sys.cpu","timestamp":1700000000,"value":1.5,"tags":{"host":"a"}}`.
 * The body is one JSON document, so it is buffered up to `maxBodyBytes` and parsed at `end()`.
 * Timestamps below 2^32 are seconds, larger ones milliseconds (OpenTSDB's rule); a missing or
 * zero timestamp means now. Values may be numbers or numeric strings.
 */
export class OpenTsdbParser implements StreamParser {
  rowsRead = 0;
  private chunks: Uint8Array[] = [];
  private size = 0;
  private readonly max: number;
  private readonly labels: Label[] = [];

  constructor(
    private readonly sink: RowSink,
    private readonly opts: OpenTsdbOptions = {},
  ) {
    this.max = opts.maxBodyBytes ?? DEFAULT_OPENTSDB_MAX_BODY;
  }

  write(chunk: Uint8Array): void {
    this.size += chunk.length;
    if (this.size > this.max) {
      // Too large, not malformed: 413, as for every other body over its size flag.
      throw new PayloadTooLargeError(`opentsdb: byte ${this.max}: body larger than ${this.max} bytes (-opentsdbhttp.maxInsertRequestSize)`);
    }
    this.chunks.push(chunk);
  }

  end(): void {
    const buf = Buffer.concat(this.chunks);
    this.chunks = [];
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(buf);
    } catch {
      throw parseError("opentsdb", "body", "invalid UTF-8");
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      throw parseError("opentsdb", "body", `invalid JSON: ${msg}`);
    }
    const items = Array.isArray(doc) ? doc : [doc];
    const defaultTs = this.opts.defaultTimestampMs ?? Date.now();
    // Validate everything first: the request is accepted whole or not at all.
    const ts = new Float64Array(items.length);
    const vs = new Float64Array(items.length);
    for (let k = 0; k < items.length; k++) {
      const where = Array.isArray(doc) ? `item ${k + 1}` : "object";
      const it: unknown = items[k];
      if (typeof it !== "object" || it === null || Array.isArray(it)) throw parseError("opentsdb", where, "want a JSON object");
      const o = it as Record<string, unknown>;
      if (typeof o["metric"] !== "string" || o["metric"] === "") throw parseError("opentsdb", where, 'missing or empty "metric"');
      const v = o["value"];
      const value = typeof v === "number" ? v : typeof v === "string" ? parseFloatStrict(v) : undefined;
      if (value === undefined) throw parseError("opentsdb", where, `invalid "value" ${excerpt(JSON.stringify(v) ?? "undefined")}`);
      vs[k] = value;
      const t = o["timestamp"];
      let tn: number | undefined = t === undefined ? 0 : typeof t === "number" ? t : typeof t === "string" ? parseFloatStrict(t) : undefined;
      if (tn === undefined || !Number.isFinite(tn) || tn < 0) {
        throw parseError("opentsdb", where, `invalid "timestamp" ${excerpt(JSON.stringify(t) ?? "undefined")}`);
      }
      tn = tn === 0 ? defaultTs : tn < 4294967296 ? Math.round(tn * 1000) : Math.round(tn);
      if (!Number.isSafeInteger(tn)) throw parseError("opentsdb", where, `"timestamp" out of range`);
      ts[k] = tn;
      const tags = o["tags"];
      if (tags !== undefined && (typeof tags !== "object" || tags === null || Array.isArray(tags))) {
        throw parseError("opentsdb", where, '"tags" must be an object');
      }
      if (tags !== undefined) {
        for (const name in tags) {
          const tv = (tags as Record<string, unknown>)[name];
          if (typeof tv !== "string") throw parseError("opentsdb", where, `tag ${excerpt(name)}: value must be a string`);
          if (name === METRIC_NAME_LABEL) throw parseError("opentsdb", where, "tag __name__ is not allowed");
        }
      }
    }
    const labels = this.labels;
    for (let k = 0; k < items.length; k++) {
      const o = items[k] as Record<string, unknown>;
      labels.length = 0;
      labels.push({ name: METRIC_NAME_LABEL, value: o["metric"] as string });
      const tags = o["tags"] as Record<string, string> | undefined;
      if (tags !== undefined) for (const name in tags) labels.push({ name, value: tags[name]! });
      applyExtraLabels(labels, this.opts.extraLabels);
      try {
        this.sink.series(labels);
      } catch (err) {
        throw locateTsdb(err, Array.isArray(doc) ? `item ${k + 1}` : "object");
      }
      this.sink.sample(ts[k]!, vs[k]!);
      this.rowsRead++;
    }
  }
}

function locateTsdb(err: unknown, where: string): unknown {
  return locate(err, "opentsdb", where);
}
