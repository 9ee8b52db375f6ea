import type { Trace } from "@strata/core";
import type { ServerResponse } from "node:http";
import type { FastifyReply } from "fastify";
import { errorMessage, errorTypeOf, httpStatusOf, type ErrorType, type Labels } from "@strata/core";
import { formatPromValue, ParseError } from "@strata/promql";

/**
 * Writes Prometheus API JSON answers and errors. Whole answers go through fastify's reply;
 * streamed ones (render.ts) write to the raw response after `reply.hijack()`, and their errors
 * through {@link failure}.
 */

export function writeJson(reply: FastifyReply, status: number, body: string): void {
  // The body is JSON already: sent as is, with Prometheus' `application/json` (no charset added).
  void reply.code(status).header("content-type", "application/json").serializer(asIs).send(body);
}

const asIs = (body: unknown): string => body as string;

export interface Annotations {
  readonly warnings?: readonly string[];
  readonly infos?: readonly string[];
  readonly isPartial?: boolean;
  /** The query's trace (`trace=1`), written beside the data as VictoriaMetrics does. */
  readonly trace?: Trace;
}

/** `{"status":"success","isPartial":…,"data":<dataJson>,"warnings":[…],"infos":[…]}`. */
export function success(reply: FastifyReply, dataJson: string, ann: Annotations = {}): void {
  writeJson(reply, 200, successBody(dataJson, ann));
}

function successBody(dataJson: string, ann: Annotations): string {
  let body = `{"status":"success"`;
  if (ann.isPartial !== undefined) body += `,"isPartial":${ann.isPartial}`;
  body += `,"data":${dataJson}`;
  if (ann.warnings && ann.warnings.length > 0) body += `,"warnings":${JSON.stringify(ann.warnings)}`;
  if (ann.infos && ann.infos.length > 0) body += `,"infos":${JSON.stringify(ann.infos)}`;
  return `${body}}`;
}

/**
 * The whole answers of one list route (labels, label values, series, metadata), kept by the list
 * they were written from. A list from select's index-answer cache is frozen and the same array on
 * every hit of its entry (SelectBackend), so a repeated call sends the bytes the first one wrote,
 * with no JSON written or encoded per call; an invalidated or refreshed entry is a new array and
 * the kept bytes go with the old one. Other lists (fetched and not cached, cut by a limit, or
 * partial or with warnings) are written per call.
 */
export class KeptAnswers<T> {
  private readonly bytes = new WeakMap<readonly T[], Buffer>();

  constructor(private readonly dataJson: (list: readonly T[]) => string) {}

  send(reply: FastifyReply, a: { readonly value: readonly T[]; readonly isPartial: boolean; readonly warnings: readonly string[] }): void {
    if (a.isPartial || a.warnings.length > 0 || !Object.isFrozen(a.value)) {
      success(reply, this.dataJson(a.value), { isPartial: a.isPartial, warnings: a.warnings });
      return;
    }
    let body = this.bytes.get(a.value);
    if (body === undefined) this.bytes.set(a.value, (body = Buffer.from(successBody(this.dataJson(a.value), { isPartial: false }))));
    void reply.code(200).header("content-type", "application/json").send(body);
  }

  /** Whether the answer of `list` is kept (for tests). */
  has(list: readonly T[]): boolean {
    return this.bytes.has(list);
  }
}

/** Prometheus' error body. Its `errorType` is one Prometheus knows: a body over the limit is `bad_data`. */
export function errorBody(type: ErrorType, message: string): string {
  return JSON.stringify({ status: "error", errorType: type === "too_large" ? "bad_data" : type, error: message });
}

/** The Prometheus error shape and status of an error (from its type: 400, 422, 503, …). */
export function errorAnswer(err: unknown): { status: number; body: string } {
  // The engine parses the `query` parameter: Prometheus names the parameter before the position.
  const message = err instanceof ParseError ? `invalid parameter "query": ${errorMessage(err)}` : errorMessage(err);
  return { status: httpStatusOf(err), body: errorBody(errorTypeOf(err), message) };
}

/** An error on a raw (hijacked) response: the Prometheus error shape, or a cut connection once the headers went out. */
export function failure(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { status, body } = errorAnswer(err);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The JSON of the label sets /api/v1/series answers, by label set object. The cluster backend hands
 * out one Labels object per series (its label-set cache) and its index-answer cache keeps those
 * objects, so a repeated series call writes each set's JSON once instead of once per call. Label
 * sets are immutable (readonly); an entry goes with its object.
 */
const seriesLabelsJson = new WeakMap<Labels, string>();

/** `labelsJson(labels)`, kept for the object `labels` (see seriesLabelsJson). */
export function labelsJsonKept(labels: Labels): string {
  let s = seriesLabelsJson.get(labels);
  if (s === undefined) seriesLabelsJson.set(labels, (s = labelsJson(labels)));
  return s;
}

/** Whether the JSON of `labels` is kept (for tests). */
export function labelsJsonIsKept(labels: Labels): boolean {
  return seriesLabelsJson.has(labels);
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
