// Thin client of the select Prometheus API. Every failure becomes an ApiError that keeps what
// the user needs: the server's message, its errorType, the HTTP status and the query.

export class ApiError extends Error {
  override readonly name = "ApiError";
  constructor(
    message: string,
    readonly errorType: string,
    readonly status: number,
    readonly query: string,
    readonly url: string,
  ) {
    super(message);
  }
}

export interface PromResponse<T> {
  readonly status: "success" | "error";
  readonly data: T;
  readonly warnings?: readonly string[];
  readonly infos?: readonly string[];
  readonly isPartial?: boolean;
  readonly error?: string;
  readonly errorType?: string;
}

export interface RawAnswer<T> {
  readonly body: PromResponse<T>;
  /** The answer exactly as received, for the JSON view. */
  readonly text: string;
  readonly url: string;
}

export type SampleValue = readonly [number, string];
export interface MatrixSeries { readonly metric: Readonly<Record<string, string>>; readonly values: readonly SampleValue[] }
export interface VectorSample { readonly metric: Readonly<Record<string, string>>; readonly value: SampleValue }
export type QueryData =
  | { readonly resultType: "matrix"; readonly result: readonly MatrixSeries[] }
  | { readonly resultType: "vector"; readonly result: readonly VectorSample[] }
  | { readonly resultType: "scalar"; readonly result: SampleValue }
  | { readonly resultType: "string"; readonly result: SampleValue };

export type Params = ReadonlyArray<readonly [string, string]>;

export type FetchFn = (url: string, init: { signal?: AbortSignal; headers?: Record<string, string> }) => Promise<{
  readonly status: number;
  text(): Promise<string>;
}>;

export class Api {
  constructor(
    readonly base: string,
    private readonly fetchFn: FetchFn = (u, i) => fetch(u, i),
  ) {}

  url(path: string, params: Params): string {
    const qs = new URLSearchParams();
    for (const [k, v] of params) qs.append(k, v);
    const s = qs.toString();
    return this.base + path + (s === "" ? "" : "?" + s);
  }

  async get<T>(path: string, params: Params, query = "", signal?: AbortSignal): Promise<RawAnswer<T>> {
    const url = this.url(path, params);
    let status = 0;
    let text: string;
    try {
      const res = await this.fetchFn(url, signal ? { signal, headers: { accept: "application/json" } } : { headers: { accept: "application/json" } });
      status = res.status;
      text = await res.text();
    } catch (e: unknown) {
      if (e instanceof DOMException && e.name === "AbortError") throw e;
      throw new ApiError(`cannot reach ${url}: ${e instanceof Error ? e.message : String(e)}`, "unavailable", 0, query, url);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      const snippet = text.length > 300 ? text.slice(0, 300) + "…" : text;
      throw new ApiError(`HTTP ${status}: ${snippet.trim() || "empty response"}`, status >= 500 ? "internal" : "bad_response", status, query, url);
    }
    const b = body as Partial<PromResponse<T>>;
    if (status >= 400 || b.status !== "success") {
      throw new ApiError(b.error ?? `HTTP ${status}`, b.errorType ?? "unknown", status, query, url);
    }
    return { body: b as PromResponse<T>, text, url };
  }

  queryRange(query: string, startMs: number, endMs: number, stepMs: number, signal?: AbortSignal): Promise<RawAnswer<QueryData>> {
    return this.get<QueryData>("query_range", [
      ["query", query], ["start", secs(startMs)], ["end", secs(endMs)], ["step", secs(stepMs)],
    ], query, signal);
  }

  query(query: string, timeMs: number, signal?: AbortSignal): Promise<RawAnswer<QueryData>> {
    return this.get<QueryData>("query", [["query", query], ["time", secs(timeMs)]], query, signal);
  }

  async labelValues(name: string, match: string | undefined, signal?: AbortSignal): Promise<string[]> {
    const params: Array<[string, string]> = match ? [["match[]", match]] : [];
    const a = await this.get<string[]>(`label/${encodeURIComponent(name)}/values`, params, "", signal);
    return Array.isArray(a.body.data) ? a.body.data : [];
  }

  async labelNames(match: string | undefined, signal?: AbortSignal): Promise<string[]> {
    const params: Array<[string, string]> = match ? [["match[]", match]] : [];
    const a = await this.get<string[]>("labels", params, "", signal);
    return Array.isArray(a.body.data) ? a.body.data : [];
  }
}

function secs(ms: number): string {
  return (ms / 1000).toString();
}

/**
 * Position of a Prometheus-style parse error ("1:5: parse error: …", also when wrapped as
 * `invalid parameter "query": 1:5: parse error: …`) as a 0-based offset into `query`.
 */
export function parseErrorPosition(message: string, query: string): { offset: number; line: number; col: number; detail: string } | undefined {
  const m = /(\d+):(\d+): parse error: ([\s\S]*)$/.exec(message);
  if (!m) return undefined;
  const line = Number(m[1]);
  const col = Number(m[2]);
  const lines = query.split("\n");
  if (line < 1 || col < 1 || line > lines.length) return undefined;
  let offset = 0;
  for (let i = 0; i < line - 1; i++) offset += (lines[i] ?? "").length + 1;
  // Prometheus counts the column in UTF-8 bytes; the editor needs a UTF-16 index.
  const text = lines[line - 1] ?? "";
  let bytes = 0;
  let idx = 0;
  while (idx < text.length && bytes < col - 1) {
    const cp = text.codePointAt(idx) ?? 0;
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    idx += cp >= 0x10000 ? 2 : 1;
  }
  return { offset: offset + idx, line, col, detail: m[3] ?? "" };
}
