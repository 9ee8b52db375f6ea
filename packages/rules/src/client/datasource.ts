import { labelsFromRecord } from "@strata/core";
import type { Datasource, VectorSample } from "../types.js";
import { HttpClient, joinUrl, type ClientOptions } from "./http.js";

/**
 * A Prometheus-compatible query API as a rule datasource (vmalert's -datasource.url and
 * -remoteRead.url): POST <url>/api/v1/query with query and time.
 */

interface PromResponse {
  status?: string;
  error?: string;
  errorType?: string;
  data?: { resultType?: string; result?: unknown };
}

function parseValue(v: unknown): number {
  if (!Array.isArray(v) || v.length !== 2) throw new Error("malformed sample in the datasource's answer");
  const s = String(v[1]);
  return s === "+Inf" ? Infinity : s === "-Inf" ? -Infinity : Number(s);
}

export class HttpDatasource implements Datasource {
  private readonly client: HttpClient;
  private readonly url: string;
  /** Queries sent and failed (for /metrics). */
  requests = 0;
  errors = 0;

  constructor(baseUrl: string, opts: ClientOptions = {}) {
    this.url = joinUrl(baseUrl, "/api/v1/query");
    this.client = new HttpClient(opts);
  }

  async query(expr: string, time: number, signal?: AbortSignal): Promise<readonly VectorSample[]> {
    this.requests++;
    try {
      return await this.doQuery(expr, time, signal);
    } catch (err) {
      this.errors++;
      throw err;
    }
  }

  private async doQuery(expr: string, time: number, signal?: AbortSignal): Promise<readonly VectorSample[]> {
    const body = new URLSearchParams({ query: expr, time: (time / 1000).toFixed(3) }).toString();
    const res = await this.client.request(this.url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
      ...(signal ? { signal } : {}),
    });
    let json: PromResponse;
    try {
      json = JSON.parse(res.body.toString("utf8")) as PromResponse;
    } catch {
      throw new Error(`datasource ${this.url} answered ${res.status} with non-JSON: ${res.body.toString("utf8").slice(0, 200)}`);
    }
    if (res.status !== 200 || json.status !== "success") {
      throw new Error(`datasource ${this.url} answered ${res.status}: ${json.errorType ?? ""}: ${json.error ?? res.body.toString("utf8").slice(0, 200)}`);
    }
    const data = json.data ?? {};
    if (data.resultType === "scalar") return [{ labels: [], value: parseValue(data.result) }];
    if (data.resultType !== "vector" || !Array.isArray(data.result)) throw new Error(`rule result is not a vector or scalar (got ${data.resultType ?? "nothing"})`);
    return (data.result as { metric?: Record<string, string>; value?: unknown }[]).map((r) => ({ labels: labelsFromRecord(r.metric ?? {}), value: parseValue(r.value) }));
  }
}
