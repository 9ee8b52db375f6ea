import { BadDataError } from "@strata/core";
import type { Label } from "@strata/core";
import type { FormatName, RowSink, StreamParser } from "./common.js";
import { parseExtraLabels } from "./common.js";
import { CsvParser, parseCsvFormat } from "./csv.js";
import { GraphiteParser } from "./graphite.js";
import { InfluxParser, parseInfluxPrecision } from "./influx.js";
import { JsonLinesParser } from "./jsonlines.js";
import { OpenTsdbParser } from "./opentsdb.js";
import { PromTextParser, isOpenMetricsContentType } from "./promtext.js";
import type { MetricMetadata } from "./promtext.js";
import { parsePushgatewayPath } from "./pushgateway.js";

/** The import endpoints, by the format their body is in. */
export type ImportFormat = "jsonline" | "prometheus" | "csv" | "influx" | "opentsdb" | "graphite";

export interface ImportRequest {
  readonly format: ImportFormat;
  /** The request's query parameters (and form fields, if the caller merged them). */
  readonly query: URLSearchParams;
  readonly contentType?: string | undefined;
  /** Request time in ms: the timestamp of samples that carry none. */
  readonly nowMs: number;
  /** For prometheus: a Pushgateway-style suffix `/metrics/job/<job>/…` of the URL path. */
  readonly pushgatewayPath?: string | undefined;
  /** Longest accepted line (line formats) or body (OpenTSDB), bytes. */
  readonly maxLineBytes?: number;
  readonly maxBodyBytes?: number;
  /** Receives HELP/TYPE/UNIT metadata when a prometheus body ends. */
  readonly onMetadata?: (meta: readonly MetricMetadata[]) => void;
}

/**
 * Parses the `timestamp` query parameter: a Unix time in seconds, milliseconds, microseconds or
 * nanoseconds, told apart by magnitude (< 1e10 s, < 1e13 ms, < 1e16 µs, else ns), or RFC 3339.
 */
export function parseTimestampParam(s: string): number {
  const n = Number(s);
  if (s.trim() !== "" && Number.isFinite(n)) {
    const a = Math.abs(n);
    const ms = a < 1e10 ? n * 1000 : a < 1e13 ? n : a < 1e16 ? n / 1000 : n / 1e6;
    return Math.round(ms);
  }
  const d = Date.parse(s);
  if (/^\d{4}-\d{2}-\d{2}T/.test(s) && Number.isFinite(d)) return d;
  throw new BadDataError(`invalid timestamp parameter ${JSON.stringify(s)}: want Unix seconds or milliseconds, or RFC 3339`);
}

/**
 * Builds the parser for an import request from VictoriaMetrics-style parameters:
 * `extra_label` (repeated), `timestamp` (prometheus), `format` (csv), `db` / `bucket` and
 * `precision` (influx), and the Content-Type (OpenMetrics). Throws BadDataError for bad
 * parameters before any byte of the body is read.
 */
export function parserForRequest(req: ImportRequest, sink: RowSink): StreamParser {
  const q = req.query;
  const extra: Label[] = parseExtraLabels(q.getAll("extra_label"));
  const base = {
    extraLabels: extra,
    defaultTimestampMs: req.nowMs,
    ...(req.maxLineBytes !== undefined ? { maxLineBytes: req.maxLineBytes } : {}),
  };
  switch (req.format) {
    case "jsonline":
      return new JsonLinesParser(sink, base);
    case "prometheus": {
      const ts = q.get("timestamp");
      const extraLabels = req.pushgatewayPath ? [...parsePushgatewayPath(req.pushgatewayPath), ...extra] : extra;
      const p = new PromTextParser(sink, {
        ...base,
        extraLabels,
        defaultTimestampMs: ts !== null && ts !== "" ? parseTimestampParam(ts) : req.nowMs,
        openMetrics: isOpenMetricsContentType(req.contentType),
      });
      if (req.onMetadata === undefined) return p;
      const onMetadata = req.onMetadata;
      return {
        write: (c) => p.write(c),
        end: () => {
          p.end();
          onMetadata(p.metadata());
        },
        get rowsRead() {
          return p.rowsRead;
        },
      };
    }
    case "csv": {
      const f = q.get("format");
      if (f === null) throw new BadDataError("csv: missing format parameter, e.g. format=1:metric:name,2:label:job,3:time:unix_s", "STRATA_PARSE_ERROR");
      return new CsvParser(sink, { ...base, format: parseCsvFormat(f) });
    }
    case "influx": {
      const db = q.get("db") ?? q.get("bucket") ?? undefined;
      return new InfluxParser(sink, {
        ...base,
        precision: parseInfluxPrecision(q.get("precision")),
        ...(db !== undefined && db !== "" ? { db } : {}),
      });
    }
    case "opentsdb":
      return new OpenTsdbParser(sink, {
        ...base,
        ...(req.maxBodyBytes !== undefined ? { maxBodyBytes: req.maxBodyBytes } : {}),
      });
    case "graphite":
      return new GraphiteParser(sink, base);
  }
}

/** The `format` label value used in per-format metrics (`vm_rows_inserted_total{type=…}` style). */
export function metricsTypeOf(format: ImportFormat, contentType?: string): FormatName {
  if (format === "prometheus" && isOpenMetricsContentType(contentType)) return "openmetrics";
  return format;
}
