import type { Trace } from "@strata/core";
import type { ServerResponse } from "node:http";
import { errorMessage, errorTypeOf, httpStatusOf, type Labels } from "@strata/core";
import { formatPromValue, ParseError } from "@strata/promql";

/** Writes Prometheus API JSON answers and errors. */

export function writeJson(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

export interface Annotations {
  readonly warnings?: readonly string[];
  readonly infos?: readonly string[];
  readonly isPartial?: boolean;
  /** The query's trace (`trace=1`), written beside the data as VictoriaMetrics does. */
  readonly trace?: Trace;
}

/** `{"status":"success","isPartial":…,"data":<dataJson>,"warnings":[…],"infos":[…]}`. */
export function success(res: ServerResponse, dataJson: string, ann: Annotations = {}): void {
  let body = `{"status":"success"`;
  if (ann.isPartial !== undefined) body += `,"isPartial":${ann.isPartial}`;
  body += `,"data":${dataJson}`;
  if (ann.warnings && ann.warnings.length > 0) body += `,"warnings":${JSON.stringify(ann.warnings)}`;
  if (ann.infos && ann.infos.length > 0) body += `,"infos":${JSON.stringify(ann.infos)}`;
  writeJson(res, 200, `${body}}`);
}

/** The Prometheus error shape; the status comes from the error's type (400, 422, 503, …). */
export function failure(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = httpStatusOf(err);
  const type = errorTypeOf(err);
  // The engine parses the `query` parameter: Prometheus names the parameter before the position.
  const message = err instanceof ParseError ? `invalid parameter "query": ${errorMessage(err)}` : errorMessage(err);
  const body = JSON.stringify({ status: "error", errorType: type === "too_large" ? "bad_data" : type, error: message });
  writeJson(res, status, body);
}

export function labelsJson(labels: Labels): string {
  let s = "{";
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (i > 0) s += ",";
    s += `${JSON.stringify(l.name)}:${JSON.stringify(l.value)}`;
  }
  return `${s}}`;
}

/** A timestamp in ms as the API writes it: unix seconds with up to 3 decimals, a JSON number. */
export function tsJson(ms: number): string {
  return String(ms / 1000);
}

export function sampleJson(ms: number, v: number): string {
  return `[${tsJson(ms)},"${formatPromValue(v)}"]`;
}
