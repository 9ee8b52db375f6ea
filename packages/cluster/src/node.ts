import { create } from "@bufbuild/protobuf";
import type { Logger, MetricsRegistry } from "@strata/core";
import { BadDataError, labelValue } from "@strata/core";
import { cluster, createInsertClient, type ChannelSecurity, type InsertClient } from "@strata/protocol";
import { fromGrpcError } from "./grpc-errors.js";

export interface StorageNodeOptions {
  /** Bytes of WriteRows_v1 payload allowed in flight to this node before writers wait. */
  readonly maxBufferBytes: number;
  /** First retry delay of the health check after a failure; doubles up to maxBackoffMs. */
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Interval of health checks while the node is healthy. */
  readonly healthCheckIntervalMs: number;
  /** mTLS to the node (-cluster.tls); plain without it. */
  readonly channel?: ChannelSecurity;
  readonly logger?: Logger;
  readonly metrics?: MetricsRegistry;
}

interface Waiter {
  readonly bytes: number;
  readonly resolve: (ok: boolean) => void;
  timer: NodeJS.Timeout | undefined;
}

/**
 * One storage node as seen from insert: a grpc-js channel to its insert port, its health, and
 * a bounded buffer of in-flight bytes. Writers `acquire` buffer space before sending and wait
 * (backpressure) while the node is full; a waiter that times out is told so and reroutes.
 *
 * Health: a failed write marks the node unhealthy at once; a background ping loop with
 * exponential backoff marks it healthy again when Ping_v1 answers ready and not read-only.
 * A read-only node (low disk space: its write fails with STRATA_READ_ONLY / STRATA_DISK_FULL,
 * or its ping says so) is unhealthy for writes — its share is rerouted — and counted apart.
 */
export class StorageNodeClient {
  readonly client: InsertClient;
  private healthyFlag = true;
  private readOnlyFlag = false;
  private inflight = 0;
  private readonly waiters: Waiter[] = [];
  private backoffMs: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private pinging = false;
  private pingFailures = 0;
  /** The node's -retentionPeriod / -futureRetention from its last ping (0: not known yet). */
  retentionMs = 0;
  futureRetentionMs = 0;
  readonly rowsSent;
  readonly bytesSent;
  readonly errors;
  readonly lastError: { message: string } = { message: "" };

  constructor(
    readonly address: string,
    readonly index: number,
    private readonly opts: StorageNodeOptions,
  ) {
    this.client = createInsertClient(
      address,
      opts.channel?.options,
      opts.channel?.credentials,
    );
    this.backoffMs = opts.minBackoffMs;
    const m = opts.metrics;
    const l = `{node="${labelValue(address)}"}`;
    this.rowsSent = m?.counter(`strata_insert_rows_sent_total${l}`, "Rows acknowledged by each storage node.");
    this.bytesSent = m?.counter(`strata_insert_bytes_sent_total${l}`, "Compressed WriteRows_v1 payload bytes acknowledged by each storage node.");
    this.errors = m?.counter(`strata_insert_node_errors_total${l}`, "Failed WriteRows_v1 calls per storage node.");
    m?.gauge(`strata_insert_node_healthy${l}`, "1 while the storage node accepts writes.", () => (this.healthyFlag ? 1 : 0));
    m?.gauge(`strata_insert_node_read_only${l}`, "1 while the storage node refuses writes for lack of disk space (its share is rerouted).", () =>
      this.readOnlyFlag ? 1 : 0,
    );
    m?.gauge(`strata_insert_buffered_bytes${l}`, "WriteRows_v1 payload bytes in flight to each storage node.", () => this.inflight);
    // The first ping goes out at once: it tells the node's retention window as well as its health.
    this.schedule(0);
  }

  get healthy(): boolean {
    return this.healthyFlag;
  }

  /** The node said it is read-only (low disk space); implies !healthy. */
  get readOnly(): boolean {
    return this.readOnlyFlag;
  }

  get bufferedBytes(): number {
    return this.inflight;
  }

  /** Marks the node unhealthy after a failed call; the ping loop brings it back. */
  markFailed(err: unknown): void {
    this.errors?.inc();
    const msg = err instanceof Error ? err.message : String(err);
    this.lastError.message = msg;
    if (isReadOnlyFailure(err)) this.setReadOnly(true);
    if (this.healthyFlag) {
      this.healthyFlag = false;
      this.backoffMs = this.opts.minBackoffMs;
      this.opts.logger?.warn({ node: this.address, err: msg }, "storage node marked unhealthy");
      this.schedule(this.backoffMs);
    }
  }

  /**
   * Waits until `bytes` fit into the node's buffer (a payload larger than the whole buffer is
   * admitted when nothing else is in flight). Resolves false after `timeoutMs`.
   */
  acquire(bytes: number, timeoutMs: number): Promise<boolean> {
    if (this.fits(bytes) && this.waiters.length === 0) {
      this.inflight += bytes;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const w: Waiter = { bytes, resolve, timer: undefined };
      w.timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
        this.drain();
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  release(bytes: number): void {
    this.inflight -= bytes;
    this.drain();
  }

  private fits(bytes: number): boolean {
    return this.inflight === 0 || this.inflight + bytes <= this.opts.maxBufferBytes;
  }

  private drain(): void {
    while (this.waiters.length > 0 && this.fits(this.waiters[0]!.bytes)) {
      const w = this.waiters.shift()!;
      clearTimeout(w.timer);
      this.inflight += w.bytes;
      w.resolve(true);
    }
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.ping(), ms);
    this.timer.unref();
  }

  private async ping(): Promise<void> {
    if (this.closed || this.pinging) return;
    this.pinging = true;
    try {
      const res = await this.client.unary("Ping_v1", create(cluster.PingRequestSchema), { deadline: Date.now() + 5000 });
      if (!res.ready) throw new Error("node is not ready");
      this.retentionMs = Number(res.retentionMs);
      this.futureRetentionMs = Number(res.futureRetentionMs);
      this.setReadOnly(res.readOnly);
      if (res.readOnly) {
        // Alive but refusing writes: keep it out of the write path, ask again soon.
        this.healthyFlag = false;
        this.pingFailures = 0;
        this.lastError.message = "storage node is read-only (low disk space)";
        this.schedule(this.opts.minBackoffMs * 5);
        return;
      }
      if (!this.healthyFlag) this.opts.logger?.info({ node: this.address }, "storage node healthy again");
      this.healthyFlag = true;
      this.pingFailures = 0;
      this.backoffMs = this.opts.minBackoffMs;
      this.schedule(this.opts.healthCheckIntervalMs);
    } catch (err) {
      // A node that answers writes but is slow to answer a ping (busy event loop, loaded
      // machine) stays healthy until three pings in a row fail; failed writes mark it at once.
      this.pingFailures++;
      if (this.healthyFlag && this.pingFailures >= 3) {
        this.healthyFlag = false;
        this.opts.logger?.warn({ node: this.address, err: err instanceof Error ? err.message : String(err) }, "storage node health check failed 3 times");
      }
      if (this.healthyFlag) {
        this.schedule(this.opts.minBackoffMs);
        return;
      }
      this.schedule(this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, this.opts.maxBackoffMs);
    } finally {
      this.pinging = false;
    }
  }

  private setReadOnly(readOnly: boolean): void {
    if (this.readOnlyFlag === readOnly) return;
    this.readOnlyFlag = readOnly;
    if (readOnly) this.opts.logger?.warn({ node: this.address }, "storage node is read-only (low disk space): rerouting its share");
    else this.opts.logger?.info({ node: this.address }, "storage node left read-only mode");
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.client.close();
  }
}

/** A write refused because the node is short of disk space (storage's STRATA_READ_ONLY / STRATA_DISK_FULL). */
function isReadOnlyFailure(err: unknown): boolean {
  const details = typeof err === "object" && err !== null && "details" in err ? (err as { details: unknown }).details : undefined;
  return typeof details === "string" && (details.startsWith("STRATA_READ_ONLY:") || details.startsWith("STRATA_DISK_FULL:"));
}

/** grpc status codes that mean "this node cannot take the call now" (reroute and retry). */
export function isNodeFailure(err: unknown): boolean {
  return !(fromGrpcError(err) instanceof BadDataError);
}
