import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@strata/core";
import type { TlsConfig } from "./config.js";
import type { DurableQueue, Scratch } from "./queue.js";

/**
 * Sends one durable queue to one remote write URL, oldest block first, one request at a time
 * (so a series' samples arrive in order). 2xx acknowledges; 400, 409, 413, 415 and 422 refuse
 * the data for good: the block is dropped and counted, never retried forever; any other answer
 * or a network error is retried with exponential backoff (honouring Retry-After on 429/503).
 */

export interface SenderOptions {
  readonly url: string;
  readonly queue: DurableQueue;
  /** 1: blocks are snappy 1.0 WriteRequests (consecutive ones are merged); 2: 2.0 Requests, sent one each. */
  readonly version: 1 | 2;
  readonly log: Logger;
  readonly sendTimeoutMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Largest uncompressed request when merging blocks. */
  readonly maxBlockBytes?: number;
  /**
   * Sends at most this often while the backlog is small, so that many small blocks (one per
   * scrape) go out as one request (vmagent's -remoteWrite.flushInterval). 0: at once.
   */
  readonly flushIntervalMs?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** TLS towards an https:// URL (-remoteWrite.tlsCAFile, tlsCertFile, tlsKeyFile, tlsServerName, tlsInsecureSkipVerify). */
  readonly tls?: TlsConfig;
}

export class RemoteWriteSender {
  /** Counters for /metrics. */
  sentBlocks = 0;
  sentBytes = 0;
  retries = 0;
  droppedBlocks = 0;
  lastError = "";
  private stopped = false;
  private readonly abort = new AbortController();
  private readonly loop: Promise<void>;
  private readonly aborted: Promise<void>;
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(private readonly o: SenderOptions) {
    const t = o.tls;
    this.agent = o.url.startsWith("https:")
      ? new HttpsAgent({
          keepAlive: true,
          maxSockets: 1,
          rejectUnauthorized: t?.insecureSkipVerify !== true,
          ...(t?.ca !== undefined ? { ca: t.ca } : {}),
          ...(t?.cert !== undefined ? { cert: t.cert } : {}),
          ...(t?.key !== undefined ? { key: t.key } : {}),
          ...(t?.serverName !== undefined ? { servername: t.serverName } : {}),
        })
      : new HttpAgent({ keepAlive: true, maxSockets: 1 });
    this.aborted = new Promise((r) => this.abort.signal.addEventListener("abort", () => r(), { once: true }));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.loop;
    this.agent.destroy();
  }

  private async run(): Promise<void> {
    const q = this.o.queue;
    let backoff = this.o.retryMinMs ?? 1000;
    let lastSend = 0;
    const maxRaw = this.o.maxBlockBytes ?? 8 * 1024 * 1024;
    while (!this.stopped) {
      await Promise.race([q.wait(), this.aborted]);
      if (this.stopped) return;
      const linger = lastSend + (this.o.flushIntervalMs ?? 0) - Date.now();
      // 2.0 blocks carry their own symbol tables and are not merged: no point in waiting.
      if (linger > 0 && this.o.version === 1 && q.pendingBytes < maxRaw / 8) {
        try {
          await sleep(linger, undefined, { signal: this.abort.signal });
        } catch {
          return;
        }
      }
      lastSend = Date.now();
      let blocks;
      try {
        // The buffers of the last request are free again: post() returns once its body was written.
        blocks = q.peek(this.o.version === 1 ? maxRaw / 4 : 0, this.readBuf);
      } catch (err) {
        if (this.stopped) return;
        throw err;
      }
      if (blocks.length === 0) continue;
      const body = blocks.length === 1 ? blocks[0]!.data : mergeSnappyBlocks(blocks.map((b) => b.data), this.mergeBuf);
      this.shrinkBuffers(maxRaw);
      const next = blocks[blocks.length - 1]!.next;
      const r = await this.post(body);
      if (this.stopped && r.kind !== "ok") return;
      switch (r.kind) {
        case "ok":
          this.sentBlocks += blocks.length;
          this.sentBytes += body.length;
          backoff = this.o.retryMinMs ?? 1000;
          q.ack(next);
          break;
        case "drop":
          this.droppedBlocks += blocks.length;
          this.lastError = r.error;
          this.o.log.error({ url: redact(this.o.url), err: r.error, blocks: blocks.length }, "remote write rejected the data permanently; dropping it");
          q.ack(next);
          break;
        case "retry": {
          this.retries++;
          this.lastError = r.error;
          const wait = r.retryAfterMs ?? backoff;
          this.o.log.warn({ url: redact(this.o.url), err: r.error, retryInMs: wait }, "remote write failed; retrying");
          try {
            await sleep(wait, undefined, { signal: this.abort.signal });
          } catch {
            return;
          }
          backoff = Math.min(backoff * 2, this.o.retryMaxMs ?? 60_000);
          break;
        }
      }
    }
  }

  /**
   * Blocks are read and merged into these two buffers, reused from request to request, so a
   * send allocates no body; one grown past a quarter of -remoteWrite.maxBlockSize by a backlog
   * is given back after the backlog.
   */
  private readonly readBuf: Scratch = { buf: Buffer.allocUnsafeSlow(64 * 1024) };
  private readonly mergeBuf: Scratch = { buf: Buffer.allocUnsafeSlow(64 * 1024) };
  private grownSends = 0;

  private shrinkBuffers(maxRaw: number): void {
    const big = this.readBuf.buf.length > maxRaw / 4 || this.mergeBuf.buf.length > maxRaw / 4;
    if (!big) return;
    // Freed after a few sends in a row that did not need the size (the backlog is gone).
    if (this.o.queue.pendingBytes > maxRaw / 8) this.grownSends = 0;
    else if (++this.grownSends >= 8) {
      this.readBuf.buf = Buffer.allocUnsafeSlow(64 * 1024);
      this.mergeBuf.buf = Buffer.allocUnsafeSlow(64 * 1024);
      this.grownSends = 0;
    }
  }

  private async post(body: Uint8Array): Promise<{ kind: "ok" } | { kind: "drop"; error: string } | { kind: "retry"; error: string; retryAfterMs?: number }> {
    const headers: Record<string, string> = {
      "content-encoding": "snappy",
      "user-agent": "strata-agent",
      ...(this.o.version === 2
        ? { "content-type": "application/x-protobuf;proto=io.prometheus.write.v2.Request", "x-prometheus-remote-write-version": "2.0.0" }
        : { "content-type": "application/x-protobuf", "x-prometheus-remote-write-version": "0.1.0" }),
      ...this.o.headers,
    };
    let res: { status: number; text: string; retryAfter: string | null };
    try {
      res = await this.request(headers, body);
    } catch (err) {
      return { kind: "retry", error: err instanceof Error ? err.message : String(err) };
    }
    const text = res.text;
    if (res.status >= 200 && res.status < 300) return { kind: "ok" };
    const error = `HTTP ${res.status}: ${text.slice(0, 300).trim()}`;
    if (!PERMANENT.has(res.status)) {
      const ra = retryAfter(res.retryAfter);
      return ra !== undefined && (res.status === 429 || res.status === 503) ? { kind: "retry", error, retryAfterMs: ra } : { kind: "retry", error };
    }
    return { kind: "drop", error };
  }

  /** One POST through the URL's keep-alive agent (node:http(s): fetch cannot take a CA or a client certificate). */
  private request(headers: Record<string, string>, body: Uint8Array): Promise<{ status: number; text: string; retryAfter: string | null }> {
    const u = new URL(this.o.url);
    if (u.username !== "" && headers["authorization"] === undefined) {
      headers["authorization"] = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}`;
    }
    headers["content-length"] = String(body.length);
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.o.sendTimeoutMs ?? 60_000)]);
    const opts = { method: "POST", headers, signal, agent: this.agent };
    // Resolves once the answer is read and the body was handed to the socket (or the request
    // ended): the caller reuses the body's buffer for the next request.
    let answer: { status: number; text: string; retryAfter: string | null } | undefined;
    let bodyDone = false;
    return new Promise((resolve, reject) => {
      const done = (): void => {
        if (answer !== undefined && bodyDone) resolve(answer);
      };
      const onResponse = (res: IncomingMessage): void => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          // Only the start of an error answer is shown; the rest is read and dropped.
          if (size < 4096) chunks.push(c);
          size += c.length;
        });
        res.on("end", () => {
          answer = { status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8"), retryAfter: headerOf(res, "retry-after") };
          done();
        });
        res.on("error", reject);
      };
      const req = u.protocol === "https:" ? httpsRequest(u, opts, onResponse) : httpRequest(u, opts, onResponse);
      req.on("error", (err) => reject(signal.aborted && this.abort.signal.aborted === false ? new Error(`no answer within ${this.o.sendTimeoutMs ?? 60_000} ms`) : err));
      const bodyWritten = (): void => {
        bodyDone = true;
        done();
      };
      req.once("finish", bodyWritten);
      req.once("close", bodyWritten);
      req.end(body);
    });
  }
}

function headerOf(res: IncomingMessage, name: string): string | null {
  const v = res.headers[name];
  return v === undefined ? null : Array.isArray(v) ? (v[0] ?? null) : v;
}

/**
 * Answers that say the data itself is refused (bad, too big, conflicting): sending it again can
 * never succeed, so it is dropped and counted. Everything else — 401/403 (credentials being
 * fixed), 404 (a receiver being deployed), 429, 5xx — is retried and the data stays queued, as
 * vmagent does.
 */
const PERMANENT = new Set([400, 409, 413, 415, 422]);

/** Retry-After in ms: delay-seconds or an HTTP date; capped at 10 minutes. */
export function retryAfter(v: string | null): number | undefined {
  if (v === null || v.trim() === "") return undefined;
  const s = Number(v.trim());
  const ms = Number.isFinite(s) ? s * 1000 : Date.parse(v) - Date.now();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(Math.max(0, Math.round(ms)), 600_000);
}

/**
 * 1.0 WriteRequests concatenate into one (a repeated field), and so do their snappy blocks: a
 * block is a varint of the uncompressed length followed by literal and copy elements whose copy
 * offsets point back only into the block's own output, so the elements of several blocks under
 * one new length header decompress to the concatenation. No decompression, no recompression.
 * With `scratch`, the result is a view of its buffer (grown when needed).
 */
export function mergeSnappyBlocks(blocks: readonly Uint8Array[], scratch?: Scratch): Uint8Array {
  let total = 0;
  let bodies = 0;
  const starts: number[] = [];
  for (const b of blocks) {
    let len = 0;
    let shift = 0;
    let i = 0;
    for (;;) {
      const c = b[i++]!;
      len += (c & 0x7f) * 2 ** shift;
      if (c < 0x80) break;
      shift += 7;
      if (i >= 5 || i >= b.length) throw new Error("invalid snappy block length header in the queue");
    }
    total += len;
    bodies += b.length - i;
    starts.push(i);
  }
  let out: Buffer;
  if (scratch === undefined) out = Buffer.allocUnsafe(5 + bodies);
  else {
    if (scratch.buf.length < 5 + bodies) scratch.buf = Buffer.allocUnsafeSlow(Math.max(5 + bodies, scratch.buf.length * 2));
    out = scratch.buf;
  }
  let pos = 0;
  let v = total;
  while (v >= 0x80) {
    out[pos++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[pos++] = v;
  blocks.forEach((b, k) => {
    out.set(b.subarray(starts[k]!), pos);
    pos += b.length - starts[k]!;
  });
  return out.subarray(0, pos);
}

/** The URL without a password, for logs and labels. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== "") u.password = "xxxxx";
    return u.toString();
  } catch {
    return url;
  }
}
