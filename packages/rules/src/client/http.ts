import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";

/**
 * One HTTP request with auth and TLS, for the alert service's clients (datasource, remote read,
 * remote write, Alertmanager). node:https rather than fetch: fetch cannot take a CA file or a
 * client certificate without a dispatcher from a package Node does not expose.
 */

export interface ClientAuth {
  readonly basicAuth?: { readonly username: string; readonly password: string };
  readonly bearerToken?: string;
}

export interface ClientTls {
  readonly caFile?: string;
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly serverName?: string;
  readonly insecureSkipVerify?: boolean;
}

export interface ClientOptions {
  readonly auth?: ClientAuth;
  readonly tls?: ClientTls;
  readonly timeoutMs?: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: Buffer;
}

const read = (f: string | undefined): Buffer | undefined => (f === undefined || f === "" ? undefined : readFileSync(f));

/** Connection settings resolved once (files read at start, so a missing CA fails the start). */
export class HttpClient {
  private readonly headers: Record<string, string> = {};
  private readonly tlsOpts: { ca?: Buffer; cert?: Buffer; key?: Buffer; servername?: string; rejectUnauthorized: boolean };
  private readonly timeoutMs: number;

  constructor(opts: ClientOptions = {}) {
    const a = opts.auth;
    if (a?.basicAuth !== undefined && a.basicAuth.username !== "") {
      this.headers["authorization"] = `Basic ${Buffer.from(`${a.basicAuth.username}:${a.basicAuth.password}`).toString("base64")}`;
    } else if (a?.bearerToken !== undefined && a.bearerToken !== "") {
      this.headers["authorization"] = `Bearer ${a.bearerToken}`;
    }
    const t = opts.tls ?? {};
    const ca = read(t.caFile);
    const cert = read(t.certFile);
    const key = read(t.keyFile);
    this.tlsOpts = {
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
      ...(t.serverName ? { servername: t.serverName } : {}),
      rejectUnauthorized: t.insecureSkipVerify !== true,
    };
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  request(url: string, init: { method: string; headers?: Record<string, string>; body?: Uint8Array | string; signal?: AbortSignal }): Promise<HttpResponse> {
    const u = new URL(url);
    const req = u.protocol === "https:" ? httpsRequest : httpRequest;
    const headers: Record<string, string> = { ...this.headers, ...init.headers };
    if (u.username !== "" && headers["authorization"] === undefined) {
      headers["authorization"] = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}`;
    }
    return new Promise((resolve, reject) => {
      const r = req(
        u,
        { method: init.method, headers, timeout: this.timeoutMs, ...(u.protocol === "https:" ? this.tlsOpts : {}), ...(init.signal ? { signal: init.signal } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      r.on("timeout", () => r.destroy(new Error(`${init.method} ${u.origin}${u.pathname}: timed out after ${this.timeoutMs} ms`)));
      r.on("error", (err) => reject(new Error(`${init.method} ${u.origin}${u.pathname}: ${err.message}`)));
      r.end(init.body);
    });
  }
}

/** Joins a base URL (maybe with a path and query) and an API path. */
export function joinUrl(base: string, path: string): string {
  const u = new URL(base);
  u.pathname = `${u.pathname.replace(/\/$/, "")}${path}`;
  return u.toString();
}
