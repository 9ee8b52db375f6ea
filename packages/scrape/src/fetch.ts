import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { createGunzip, createInflate } from "node:zlib";
import type { ScrapeConfig } from "./config.js";

/**
 * One scrape request as Prometheus makes it: content negotiation preferring OpenMetrics, gzip,
 * X-Prometheus-Scrape-Timeout-Seconds, the job's auth, TLS and http:// proxy (an http:// target
 * is fetched through it by absolute URL, an https:// one through a CONNECT tunnel, TLS end to end
 * with the target); the whole body is read (bounded) before parsing. Keep-alive agents are shared
 * per job (not through a tunnel: one per scrape).
 */

export const SCRAPE_ACCEPT =
  "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

export interface ScrapeResponse {
  /** Valid until release(). */
  readonly body: Buffer;
  readonly contentType: string;
  /** Gives the body's buffer back to the pool (the body must not be used after). */
  release(): void;
}

/**
 * Body buffers reused across scrapes: a body is read into a pooled buffer (grown by doubling)
 * and given back after parsing, so a steady agent does not allocate a new 10–100 KB buffer per
 * scrape. The pool holds at most as many buffers as scrapes were in flight at once, capped.
 */
const pool: Buffer[] = [];
const POOL_MAX = 64;
const POOL_MAX_BYTES = 1 << 20;

function takeBuffer(min: number): Buffer {
  for (let i = pool.length - 1; i >= 0; i--) {
    if (pool[i]!.length >= min) {
      const b = pool[i]!;
      pool[i] = pool[pool.length - 1]!;
      pool.pop();
      return b;
    }
  }
  return Buffer.allocUnsafeSlow(Math.max(min, 64 * 1024));
}

function giveBuffer(b: Buffer): void {
  if (pool.length < POOL_MAX && b.length <= POOL_MAX_BYTES) pool.push(b);
}

export class ScrapeError extends Error {}

const agents = new WeakMap<ScrapeConfig, { http: HttpAgent; https: HttpsAgent }>();

function agentsOf(job: ScrapeConfig): { http: HttpAgent; https: HttpsAgent } {
  let a = agents.get(job);
  if (a === undefined) {
    a = {
      http: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
      https: new HttpsAgent({
        keepAlive: true,
        maxSockets: 64,
        rejectUnauthorized: !job.tls.insecureSkipVerify,
        ...(job.tls.ca !== undefined ? { ca: job.tls.ca } : {}),
        ...(job.tls.cert !== undefined ? { cert: job.tls.cert } : {}),
        ...(job.tls.key !== undefined ? { key: job.tls.key } : {}),
        ...(job.tls.serverName !== undefined ? { servername: job.tls.serverName } : {}),
      }),
    };
    agents.set(job, a);
  }
  return a;
}

/** Closes the keep-alive connections of a job that went away. */
export function releaseJobAgents(job: ScrapeConfig): void {
  const a = agents.get(job);
  if (a === undefined) return;
  a.http.destroy();
  a.https.destroy();
  agents.delete(job);
}

export async function scrapeOnce(job: ScrapeConfig, url: string, timeoutMs: number, maxBodyBytes: number, signal?: AbortSignal): Promise<ScrapeResponse> {
  const started = Date.now();
  const tunnel = job.proxyUrl !== undefined && url.startsWith("https:") ? await connectTunnel(job.proxyUrl, new URL(url), timeoutMs, signal) : undefined;
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string> = {
      accept: SCRAPE_ACCEPT,
      "accept-encoding": "gzip",
      "user-agent": "strata-agent",
      "x-prometheus-scrape-timeout-seconds": String(timeoutMs / 1000),
    };
    if (job.basicAuth !== undefined) headers["authorization"] = `Basic ${Buffer.from(`${job.basicAuth.username}:${job.basicAuth.password}`).toString("base64")}`;
    else if (job.authorization !== undefined) headers["authorization"] = job.authorization;
    const a = agentsOf(job);
    const https = u.protocol === "https:";
    let req;
    if (job.proxyUrl !== undefined && !https) {
      const p = new URL(job.proxyUrl);
      if (p.username !== "") headers["proxy-authorization"] = `Basic ${Buffer.from(`${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`).toString("base64")}`;
      headers["host"] = u.host;
      req = httpRequest({ host: p.hostname, port: p.port === "" ? 80 : Number(p.port), path: url, method: "GET", headers, agent: a.http });
    } else {
      const host = u.hostname.replace(/^\[|\]$/g, "");
      const opts = { host, port: u.port === "" ? (https ? 443 : 80) : Number(u.port), path: `${u.pathname}${u.search}`, method: "GET", headers };
      if (tunnel !== undefined) {
        // tls.connect over the tunnel socket, through a one-off agent (agent: false would make a
        // direct connection of its own); the target's name or IP is checked as without a proxy.
        const t = job.tls;
        const tunneled = {
          ...opts,
          agent: new HttpsAgent({ keepAlive: false }),
          socket: tunnel,
          rejectUnauthorized: !t.insecureSkipVerify,
          ...(t.serverName !== undefined ? { servername: t.serverName } : {}),
          ...(t.ca !== undefined ? { ca: t.ca } : {}),
          ...(t.cert !== undefined ? { cert: t.cert } : {}),
          ...(t.key !== undefined ? { key: t.key } : {}),
        };
        req = httpsRequest(tunneled);
      } else req = https ? httpsRequest({ ...opts, agent: a.https }) : httpRequest({ ...opts, agent: a.http });
    }
    const timer = setTimeout(() => req.destroy(new ScrapeError(`scrape timed out after ${timeoutMs} ms`)), Math.max(0, timeoutMs - (Date.now() - started)));
    const onAbort = (): void => {
      req.destroy(new ScrapeError("scrape canceled"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    req.on("error", (err) => {
      done();
      reject(err instanceof ScrapeError ? err : new ScrapeError(err.message));
    });
    req.on("response", (res: IncomingMessage) => {
      if (res.statusCode !== 200) {
        res.resume();
        done();
        reject(new ScrapeError(`server returned HTTP status ${res.statusCode} ${res.statusMessage ?? ""}`.trim()));
        return;
      }
      const enc = (res.headers["content-encoding"] ?? "").toLowerCase();
      const stream = enc === "gzip" ? res.pipe(createGunzip()) : enc === "deflate" ? res.pipe(createInflate()) : res;
      const declared = Number(res.headers["content-length"] ?? 0);
      let buf = takeBuffer(Number.isFinite(declared) && declared > 0 && declared <= maxBodyBytes ? declared : 0);
      let size = 0;
      stream.on("data", (c: Buffer) => {
        if (size + c.length > maxBodyBytes) {
          req.destroy(new ScrapeError(`body exceeds the limit of ${maxBodyBytes} bytes (-promscrape.maxScrapeSize)`));
          return;
        }
        if (size + c.length > buf.length) {
          const next = takeBuffer(Math.max(buf.length * 2, size + c.length));
          buf.copy(next, 0, 0, size);
          giveBuffer(buf);
          buf = next;
        }
        c.copy(buf, size);
        size += c.length;
      });
      const onError = (err: Error): void => {
        done();
        reject(err instanceof ScrapeError ? err : new ScrapeError(`cannot read the body: ${err.message}`));
      };
      stream.on("error", onError);
      if (stream !== res) res.on("error", onError);
      stream.on("end", () => {
        done();
        const b = buf;
        resolve({ body: b.subarray(0, size), contentType: String(res.headers["content-type"] ?? ""), release: () => giveBuffer(b) });
      });
    });
    req.end();
  });
}

/** A CONNECT tunnel through an http:// proxy to the target's host:port. */
function connectTunnel(proxyUrl: string, target: URL, timeoutMs: number, signal: AbortSignal | undefined): Promise<Socket> {
  const p = new URL(proxyUrl);
  const authority = `${target.hostname}:${target.port === "" ? 443 : target.port}`;
  const headers: Record<string, string> = { host: authority };
  if (p.username !== "") headers["proxy-authorization"] = `Basic ${Buffer.from(`${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`).toString("base64")}`;
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: p.hostname, port: p.port === "" ? 80 : Number(p.port), method: "CONNECT", path: authority, headers, agent: false });
    const timer = setTimeout(() => req.destroy(new ScrapeError(`proxy CONNECT to ${authority} timed out after ${timeoutMs} ms`)), timeoutMs);
    const onAbort = (): void => void req.destroy(new ScrapeError("scrape canceled"));
    signal?.addEventListener("abort", onAbort, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    req.on("connect", (res: IncomingMessage, socket: Socket) => {
      done();
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new ScrapeError(`proxy ${p.host} refused CONNECT ${authority}: HTTP ${res.statusCode}`));
        return;
      }
      resolve(socket);
    });
    req.on("error", (err) => {
      done();
      reject(err instanceof ScrapeError ? err : new ScrapeError(`proxy ${p.host}: ${err.message}`));
    });
    req.end();
  });
}
