import { create } from "@bufbuild/protobuf";
import {
  BadDataError,
  InternalError,
  readInt64LE,
  RowsBatchReader,
  RowsBatchWriter,
  UnavailableError,
  type Logger,
  type MetricsRegistry,
  type RowsSink,
} from "@strata/core";
import { cluster, encodeWriteRowsAsync, type ChannelSecurity } from "@strata/protocol";
import { isNodeFailure, StorageNodeClient } from "./node.js";
import { nodeSeed, rankNodes, seriesHash, seriesHashRange, weight, type SeriesHash } from "./rendezvous.js";

export interface InsertClusterOptions {
  /** `host:port` of each storage node's insert port (-storageNode), in any order. */
  readonly nodes: readonly string[];
  /** Distinct nodes that must hold each series (-replicationFactor). */
  readonly replicationFactor: number;
  /** Keep a series on its own nodes even when they are down (-disableRerouting). */
  readonly disableRerouting?: boolean;
  /** Per-node bound of in-flight payload bytes (default 64 MiB). */
  readonly maxBufferBytesPerNode?: number;
  /** How long a write waits for buffer space on a node before rerouting (default 5 s). */
  readonly bufferWaitMs?: number;
  /** Deadline of one WriteRows_v1 call (default 30 s). */
  readonly writeTimeoutMs?: number;
  readonly healthCheckIntervalMs?: number;
  /** mTLS to the storage nodes (-cluster.tls); plain without it. */
  readonly channel?: ChannelSecurity;
  readonly logger?: Logger;
  readonly metrics?: MetricsRegistry;
}

export interface WriteOutcome {
  readonly rows: number;
  /** Rows stored on fewer than replicationFactor nodes because fewer were healthy. */
  readonly underReplicatedRows: number;
  /** Rows stored on a node outside their first replicationFactor ranked nodes. */
  readonly reroutedRows: number;
}

export interface MetadataItem {
  readonly tenant: { readonly accountID: number; readonly projectID: number };
  readonly family: string;
  readonly type: number;
  readonly help: string;
  readonly unit: string;
}

const MAX_NODES = 32;

/**
 * Writes rows batches to the storage nodes: shards series by rendezvous hashing, replicates
 * each to replicationFactor distinct nodes, reroutes the share of dead or saturated nodes, and
 * resolves only when every row is in the WAL of replicationFactor nodes — or of every healthy
 * node it could reach when fewer are up (counted as under-replicated). When some row cannot be
 * stored on any node it rejects with UnavailableError (HTTP 503: the sender retries; rows that
 * did land are deduplicated by storage).
 */
export class InsertCluster {
  readonly nodes: StorageNodeClient[];
  private readonly seeds: SeriesHash[];
  private readonly rf: number;
  private readonly reroute: boolean;
  private readonly bufferWaitMs: number;
  private readonly writeTimeoutMs: number;
  private readonly logger: Logger | undefined;
  private readonly m;
  private readonly scratchPool: WriteScratch[] = [];
  private readonly writerPool: RowsBatchWriter[] = [];
  private readonly routedPool: RoutedRows[] = [];

  constructor(opts: InsertClusterOptions) {
    if (opts.nodes.length === 0) throw new BadDataError("no storage nodes: set -storageNode", "STRATA_INVALID_FLAG");
    if (opts.nodes.length > MAX_NODES) throw new BadDataError(`at most ${MAX_NODES} storage nodes are supported`, "STRATA_INVALID_FLAG");
    if (new Set(opts.nodes).size !== opts.nodes.length) throw new BadDataError("-storageNode lists a node twice", "STRATA_INVALID_FLAG");
    if (!Number.isInteger(opts.replicationFactor) || opts.replicationFactor < 1) {
      throw new BadDataError(`-replicationFactor must be ≥ 1, got ${opts.replicationFactor}`, "STRATA_INVALID_FLAG");
    }
    this.rf = Math.min(opts.replicationFactor, opts.nodes.length);
    this.reroute = !opts.disableRerouting;
    this.bufferWaitMs = opts.bufferWaitMs ?? 5000;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 30_000;
    this.logger = opts.logger;
    const nodeOpts = {
      maxBufferBytes: opts.maxBufferBytesPerNode ?? 64 * 1024 * 1024,
      minBackoffMs: 200,
      maxBackoffMs: 5000,
      healthCheckIntervalMs: opts.healthCheckIntervalMs ?? 5000,
      ...(opts.logger ? { logger: opts.logger } : {}),
      ...(opts.metrics ? { metrics: opts.metrics } : {}),
      ...(opts.channel ? { channel: opts.channel } : {}),
    };
    this.nodes = opts.nodes.map((a, i) => new StorageNodeClient(a, i, nodeOpts));
    this.seeds = opts.nodes.map(nodeSeed);
    const r = opts.metrics;
    this.m = {
      rerouted: r?.counter("strata_insert_rows_rerouted_total", "Rows stored on a node outside their own replicationFactor nodes because one of those was down or saturated."),
      underReplicated: r?.counter(
        "strata_insert_rows_under_replicated_total",
        "Rows acknowledged with fewer than replicationFactor copies because fewer nodes were healthy.",
      ),
      unavailable: r?.counter("strata_insert_unavailable_total", "Write requests failed with 503 because some row could not be stored on any node."),
    };
    r?.gauge("strata_insert_healthy_nodes", "Storage nodes currently accepting writes.", () => this.healthyCount());
    r?.gauge("strata_insert_buffered_bytes_total", "WriteRows_v1 payload bytes in flight to all storage nodes.", () =>
      this.nodes.reduce((s, n) => s + n.bufferedBytes, 0),
    );
  }

  get replicationFactor(): number {
    return this.rf;
  }

  /**
   * The widest window of timestamps the storage nodes said (Ping_v1) they store: the longest
   * -retentionPeriod and -futureRetention among them, so insert never leaves out a sample that
   * some node would keep. 0 for a bound no node has told yet (that bound is left to storage).
   */
  retention(): { retentionMs: number; futureRetentionMs: number } {
    let retentionMs = 0;
    let futureRetentionMs = 0;
    for (const n of this.nodes) {
      if (n.retentionMs > retentionMs) retentionMs = n.retentionMs;
      if (n.futureRetentionMs > futureRetentionMs) futureRetentionMs = n.futureRetentionMs;
    }
    return { retentionMs, futureRetentionMs };
  }

  healthyCount(): number {
    let n = 0;
    for (const node of this.nodes) if (node.healthy) n++;
    return n;
  }

  /** The ranked node indexes of a series (for tests and debugging). */
  ranking(metricName: Uint8Array): number[] {
    const h = seriesHash(metricName, { lo: 0, hi: 0 });
    const out = new Int32Array(this.nodes.length);
    rankNodes(h.lo, h.hi, this.seeds, out, 0, new Float64Array(this.nodes.length));
    return [...out];
  }

  /**
   * Stores a rows batch (rows batch v1, canonical metric names). Resolves when every row is
   * acknowledged as described on the class; rejects with UnavailableError otherwise.
   */
  async write(batch: Uint8Array): Promise<WriteOutcome> {
    // Typed arrays of a write are reused by later writes (a pool, as writes run concurrently):
    // a 10k-row request would otherwise allocate and drop a few MB each time.
    const sc = this.scratchPool.pop() ?? new WriteScratch();
    try {
      return await this.writeWith(batch, sc);
    } finally {
      if (sc.bytes <= MAX_POOLED_SCRATCH_BYTES && this.scratchPool.length < MAX_POOLED_SCRATCH) this.scratchPool.push(sc);
    }
  }

  private async writeWith(batch: Uint8Array, sc: WriteScratch): Promise<WriteOutcome> {
    const { rows, segs } = this.parse(batch, sc);
    if (rows === 0) return { rows: 0, underReplicatedRows: 0, reroutedRows: 0 };
    sc.acked.fill(0, 0, segs);
    sc.tried.fill(0, 0, segs);
    sc.rerouted.fill(0, 0, segs);
    const out = await this.rounds(batch, sc, rows, segs, 0);
    this.m.underReplicated?.add(out.underReplicatedRows);
    return out;
  }

  /** Decodes a batch into sc's typed arrays; returns its rows and segments. */
  private parse(batch: Uint8Array, sc: WriteScratch): { rows: number; segs: number } {
    const N = this.nodes.length;
    // Decode once into typed arrays: per row its series segment, timestamp and value; per
    // segment (a run of rows of one series) where its name sits in the batch and its ranking.
    sc.reserve(Math.max(16, batch.length >>> 5), N);
    const scratch = sc.weights(N);
    const h: SeriesHash = { lo: 0, hi: 0 };
    const dv = new DataView(batch.buffer, batch.byteOffset, batch.byteLength);
    let rows = 0;
    let segs = 0;
    let pos = 0;
    while (pos < batch.length) {
      if (rows === sc.cap) sc.reserve(sc.cap * 2, N);
      const start = pos;
      let n = 0;
      let mul = 1;
      for (;;) {
        if (pos >= batch.length || mul > 2 ** 28) throw new BadDataError(`rows batch: bad metric-name length at byte ${start}`, "STRATA_CORRUPT_DATA");
        const b = batch[pos++]!;
        n += (b & 0x7f) * mul;
        if (b < 0x80) break;
        mul *= 128;
      }
      if (n === 0) {
        if (segs === 0) throw new BadDataError("rows batch: first row refers to a previous metric name", "STRATA_CORRUPT_DATA");
      } else {
        if (pos + n > batch.length) throw new BadDataError(`rows batch: metric name at byte ${pos} overruns the batch`, "STRATA_CORRUPT_DATA");
        const s = segs++;
        sc.segOff[s] = pos;
        sc.segLen[s] = n;
        seriesHashRange(dv, batch, pos, pos + n, h);
        rankNodes(h.lo, h.hi, this.seeds, sc.rank, s * N, scratch);
        pos += n;
      }
      if (pos + 16 > batch.length) throw new BadDataError(`rows batch: truncated row at byte ${start}`, "STRATA_CORRUPT_DATA");
      sc.rowSeg[rows] = segs - 1;
      sc.rowTs[rows] = readInt64LE(dv, pos);
      sc.rowVal[rows] = dv.getFloat64(pos + 8, true);
      pos += 16;
      rows++;
    }
    return { rows, segs };
  }

  /**
   * Sends the segments of a parsed batch in rounds until each is on replicationFactor nodes or
   * no node is left to try; acked/tried/rerouted hold each segment's state so far, `saturated`
   * the nodes whose buffer stayed full. Counts rerouted rows; throws UnavailableError when some
   * row is on no node.
   */
  private async rounds(batch: Uint8Array, sc: WriteScratch, rows: number, segs: number, saturated: number): Promise<WriteOutcome> {
    const N = this.nodes.length;
    const { rank, rowSeg, acked, tried, rerouted, roundMask } = sc;
    const maxPos = this.reroute ? N : this.rf;

    // Nodes whose buffer stayed full past bufferWaitMs in this request: their share is first
    // rerouted; only when no other node is left are they retried, waiting up to writeTimeoutMs.
    let patient = false;
    for (let round = 0; round <= 2 * N + 1; round++) {
      // Assign each segment still short of replicas to its next healthy, untried nodes.
      roundMask.fill(0, 0, segs);
      let assigned = 0;
      for (let s = 0; s < segs; s++) {
        let need = this.rf - acked[s]!;
        for (let p = 0; p < maxPos && need > 0; p++) {
          const node = rank[s * N + p]!;
          const bit = 1 << node;
          if (tried[s]! & bit) continue;
          if (!this.nodes[node]!.healthy) continue;
          tried[s]! |= bit;
          roundMask[s]! |= bit;
          if (p >= this.rf) rerouted[s] = 1;
          need--;
          assigned++;
        }
      }
      if (assigned === 0) {
        if (patient || saturated === 0) break;
        patient = true;
        for (let s = 0; s < segs; s++) tried[s]! &= ~saturated;
        continue;
      }
      const res = await this.sendRound(batch, rows, sc, patient);
      saturated |= res.saturated;
      for (let s = 0; s < segs; s++) acked[s]! += popcount(roundMask[s]! & res.ok);
    }

    let under = 0;
    let missing = 0;
    let reroutedRows = 0;
    for (let i = 0; i < rows; i++) {
      const s = rowSeg[i]!;
      if (acked[s] === 0) missing++;
      else if (acked[s]! < this.rf) under++;
      if (rerouted[s]) reroutedRows++;
    }
    this.m.rerouted?.add(reroutedRows);
    if (missing > 0) throw this.unavailable(missing, rows);
    return { rows, underReplicatedRows: under, reroutedRows };
  }

  private unavailable(missing: number, rows: number): UnavailableError {
    this.m.unavailable?.inc();
    const down = this.nodes.filter((n) => !n.healthy).map((n) => `${n.address} (${n.lastError.message || "unhealthy"})`);
    return new UnavailableError(
      `${missing} of ${rows} rows could not be stored on any storage node` + (down.length > 0 ? `; unavailable: ${down.join(", ")}` : ""),
    );
  }

  /**
   * A RowsSink that splits rows per storage node as a decoder adds them, placed on the nodes
   * healthy now (see writeRouted). Hand it back with releaseRouted when done with it.
   */
  routedRows(): RoutedRows {
    const r = this.routedPool.pop() ?? new RoutedRows(this.seeds, this.rf, this.reroute ? this.nodes.length : this.rf);
    let healthy = 0;
    for (let i = 0; i < this.nodes.length; i++) if (this.nodes[i]!.healthy) healthy |= 1 << i;
    r.reset(healthy);
    return r;
  }

  releaseRouted(r: RoutedRows): void {
    if (this.routedPool.length < MAX_POOLED_SCRATCH && r.capacity <= MAX_POOLED_SCRATCH_BYTES) this.routedPool.push(r);
  }

  /**
   * Stores the rows of a RoutedRows with the guarantees of write(). The common case is one
   * round: each node gets the batch that was built for it while decoding, with no second pass
   * over the rows. When a node fails or stays full, the rows it was to hold go through write()'s
   * rounds from where they are (the replicas that did acknowledge count).
   */
  async writeRouted(r: RoutedRows): Promise<WriteOutcome> {
    if (r.rows === 0) return { rows: 0, underReplicatedRows: 0, reroutedRows: 0 };
    if (r.unplaced > 0) throw this.unavailable(r.unplaced, r.rows);
    let used = 0;
    let ok = 0;
    let saturated = 0;
    await Promise.all(
      r.writers.map(async (w, node) => {
        if (w.length === 0) return;
        used |= 1 << node;
        const res = await this.sendTo(node, w, false);
        if (res === "ok") ok |= 1 << node;
        else if (res === "saturated") saturated |= 1 << node;
      }),
    );
    let under = r.under;
    let rerouted = r.rerouted;
    const failed = used & ~ok;
    if (failed !== 0) {
      const o = await this.recover(r, failed, ok, saturated);
      under += o.underReplicatedRows;
      rerouted += o.reroutedRows;
    } else {
      this.m.rerouted?.add(rerouted);
    }
    this.m.underReplicated?.add(under);
    return { rows: r.rows, underReplicatedRows: under, reroutedRows: rerouted };
  }

  /**
   * The rows that failed or saturated nodes were to hold, each taken once (from the first such
   * node of its placement), continued in write()'s rounds. Returns how r's counts change: the
   * rounds' counts of the taken rows minus those r had for them.
   */
  private async recover(r: RoutedRows, failed: number, ok: number, saturated: number): Promise<WriteOutcome> {
    const N = this.nodes.length;
    const maxPos = this.reroute ? N : this.rf;
    const rank = new Int32Array(N);
    const w = new Float64Array(N);
    const h = { lo: 0, hi: 0 };
    const place = { rerouted: false };
    const rec = this.writerPool.pop() ?? new RowsBatchWriter();
    rec.reset();
    const sc = this.scratchPool.pop() ?? new WriteScratch();
    // Counts r had for the rows taken here: theirs come from the rounds instead.
    let takenUnder = 0;
    let takenRerouted = 0;
    try {
      for (let x = failed; x !== 0; x &= x - 1) {
        const node = 31 - Math.clz32(x & -x);
        const rd = new RowsBatchReader(r.writers[node]!.view());
        let keep = false;
        let mask = 0;
        while (rd.next()) {
          if (!rd.sameAsPrevious) {
            seriesHash(rd.metricName, h);
            rankNodes(h.lo, h.hi, this.seeds, rank, 0, w);
            mask = placement(rank, 0, maxPos, this.rf, r.healthy, place);
            const f = mask & failed;
            keep = 31 - Math.clz32(f & -f) === node;
            if (keep) rec.addName(rd.metricName, 0, rd.metricName.length, rd.timestamp, rd.value);
          } else if (keep) {
            rec.addSameName(rd.timestamp, rd.value);
          }
          if (!keep) continue;
          if (popcount(mask) < this.rf) takenUnder++;
          if (place.rerouted) takenRerouted++;
        }
      }
      this.m.rerouted?.add(r.rerouted - takenRerouted);
      const batch = rec.view();
      const { rows, segs } = this.parse(batch, sc);
      for (let s = 0; s < segs; s++) {
        const m = placement(sc.rank, s * N, maxPos, this.rf, r.healthy, place);
        sc.tried[s] = m;
        sc.acked[s] = popcount(m & ok);
        sc.rerouted[s] = place.rerouted ? 1 : 0;
      }
      const o = await this.rounds(batch, sc, rows, segs, saturated);
      return { rows, underReplicatedRows: o.underReplicatedRows - takenUnder, reroutedRows: o.reroutedRows - takenRerouted };
    } finally {
      if (rec.capacity <= MAX_POOLED_SCRATCH_BYTES && this.writerPool.length < MAX_POOLED_SCRATCH * 2) this.writerPool.push(rec);
      if (sc.bytes <= MAX_POOLED_SCRATCH_BYTES && this.scratchPool.length < MAX_POOLED_SCRATCH) this.scratchPool.push(sc);
    }
  }

  /** Sends one round; returns bitmasks of the nodes that acknowledged and that stayed full. */
  private async sendRound(batch: Uint8Array, rows: number, sc: WriteScratch, patient: boolean): Promise<{ ok: number; saturated: number }> {
    const { rowSeg, rowTs, rowVal, segOff, segLen, roundMask } = sc;
    const N = this.nodes.length;
    const writers: (RowsBatchWriter | undefined)[] = new Array<RowsBatchWriter | undefined>(N);
    const lastSeg = new Int32Array(N).fill(-1);
    for (let i = 0; i < rows; i++) {
      const s = rowSeg[i]!;
      let mask = roundMask[s]!;
      while (mask !== 0) {
        const node = 31 - Math.clz32(mask & -mask);
        mask &= mask - 1;
        let w = writers[node];
        if (w === undefined) {
          w = this.writerPool.pop() ?? new RowsBatchWriter(Math.max(64 * 1024, Math.ceil((batch.length / N) * 1.25)));
          w.reset();
          writers[node] = w;
        }
        if (lastSeg[node] === s) {
          w.addSameName(rowTs[i]!, rowVal[i]!);
        } else {
          w.addName(batch, segOff[s]!, segLen[s]!, rowTs[i]!, rowVal[i]!);
          lastSeg[node] = s;
        }
      }
    }
    let ok = 0;
    let saturated = 0;
    try {
      await Promise.all(
        writers.map(async (w, node) => {
          if (w === undefined) return;
          const r = await this.sendTo(node, w, patient);
          if (r === "ok") ok |= 1 << node;
          else if (r === "saturated") saturated |= 1 << node;
        }),
      );
    } finally {
      // Every send is over: the writers can serve the next round or write.
      for (const w of writers) if (w !== undefined && w.capacity <= MAX_POOLED_SCRATCH_BYTES && this.writerPool.length < MAX_POOLED_SCRATCH * 2) this.writerPool.push(w);
    }
    return { ok, saturated };
  }

  private async sendTo(node: number, w: RowsBatchWriter, patient: boolean): Promise<"ok" | "failed" | "saturated"> {
    const n = this.nodes[node]!;
    // Compressed on a pool thread: w is not touched until every send of this round is over.
    const req = await encodeWriteRowsAsync(w.view(), w.length);
    const bytes = req.rows.length;
    const wait = this.reroute && !patient ? this.bufferWaitMs : this.writeTimeoutMs;
    if (!(await n.acquire(bytes, wait))) {
      this.logger?.warn({ node: n.address, bytes, waitMs: wait }, "storage node buffer stayed full; rerouting its share");
      return "saturated";
    }
    try {
      const res = await n.client.unary("WriteRows_v1", req, { deadline: Date.now() + this.writeTimeoutMs });
      if (res.rowsWritten !== w.length) throw new InternalError(`${n.address} stored ${res.rowsWritten} of ${w.length} rows`);
      n.rowsSent?.add(w.length);
      n.bytesSent?.add(bytes);
      return "ok";
    } catch (err) {
      if (!isNodeFailure(err)) throw new InternalError(`${n.address} rejected a rows batch: ${err instanceof Error ? err.message : String(err)}`);
      n.markFailed(err);
      return "failed";
    } finally {
      n.release(bytes);
    }
  }

  /** Sends metadata to every healthy node (best effort: failures are logged, not raised). */
  async writeMetadata(items: readonly MetadataItem[]): Promise<number> {
    if (items.length === 0) return 0;
    const req = create(cluster.WriteMetadataRequestSchema, {
      metadata: items.map((m) =>
        create(cluster.MetricMetadataSchema, {
          tenant: { accountId: m.tenant.accountID, projectId: m.tenant.projectID },
          metricFamilyName: m.family,
          type: m.type,
          help: m.help,
          unit: m.unit,
        }),
      ),
    });
    let stored = 0;
    await Promise.all(
      this.nodes.map(async (n) => {
        if (!n.healthy) return;
        try {
          await n.client.unary("WriteMetadata_v1", req, { deadline: Date.now() + this.writeTimeoutMs });
          stored++;
        } catch (err) {
          this.logger?.warn({ node: n.address, err: err instanceof Error ? err.message : String(err) }, "cannot store metadata");
        }
      }),
    );
    return stored;
  }

  close(): void {
    for (const n of this.nodes) n.close();
  }
}

/** Writes kept for reuse, and the largest scratch kept (bytes). */
const MAX_POOLED_SCRATCH = 8;
const MAX_POOLED_SCRATCH_BYTES = 8 * 1024 * 1024;

/** The per-row and per-segment typed arrays of one write. */
class WriteScratch {
  cap = 0;
  private n = 0;
  rowSeg = new Int32Array(0);
  rowTs = new Float64Array(0);
  rowVal = new Float64Array(0);
  segOff = new Int32Array(0);
  segLen = new Int32Array(0);
  rank = new Int32Array(0);
  acked = new Uint8Array(0);
  tried = new Uint32Array(0);
  rerouted = new Uint8Array(0);
  roundMask = new Uint32Array(0);
  private w = new Float64Array(0);

  get bytes(): number {
    return this.cap * (4 + 8 + 8 + 4 + 4 + 4 * this.n + 1 + 4 + 1 + 4);
  }

  /** Room for `cap` rows (and segments) of `n` nodes, keeping what is there. */
  reserve(cap: number, n: number): void {
    if (cap <= this.cap && n === this.n) return;
    cap = Math.max(cap, this.cap);
    const keep = n === this.n;
    const grow = <T extends Int32Array | Float64Array | Uint8Array | Uint32Array>(a: T, b: T): T => {
      if (keep) b.set(a);
      return b;
    };
    this.rowSeg = grow(this.rowSeg, new Int32Array(cap));
    this.rowTs = grow(this.rowTs, new Float64Array(cap));
    this.rowVal = grow(this.rowVal, new Float64Array(cap));
    this.segOff = grow(this.segOff, new Int32Array(cap));
    this.segLen = grow(this.segLen, new Int32Array(cap));
    this.rank = grow(this.rank, new Int32Array(cap * n));
    this.acked = new Uint8Array(cap);
    this.tried = new Uint32Array(cap);
    this.rerouted = new Uint8Array(cap);
    this.roundMask = new Uint32Array(cap);
    this.cap = cap;
    this.n = n;
  }

  weights(n: number): Float64Array {
    if (this.w.length !== n) this.w = new Float64Array(n);
    return this.w;
  }
}

/**
 * The nodes a series goes to in a first round — its first rf nodes, in rank[off, off + maxPos),
 * that are in the `healthy` mask (what write()'s first round picks); sets out.rerouted when
 * one of them lies beyond the first rf.
 */
function placement(rank: Int32Array, off: number, maxPos: number, rf: number, healthy: number, out: { rerouted: boolean }): number {
  let mask = 0;
  let need = rf;
  out.rerouted = false;
  for (let p = 0; p < maxPos && need > 0; p++) {
    const node = rank[off + p]!;
    if (((healthy >>> node) & 1) === 0) continue;
    mask |= 1 << node;
    if (p >= rf) out.rerouted = true;
    need--;
  }
  return mask;
}

/**
 * Rows of one write request split per storage node as a decoder adds them (a RowsSink; get one
 * from InsertCluster.routedRows()). Each series is placed on the nodes write()'s first round
 * would pick from the nodes healthy when it was handed out, using the series hash the decoder
 * passes; rows placed on fewer than replicationFactor nodes, beyond a series' own nodes, or on
 * none are counted.
 */
export class RoutedRows implements RowsSink {
  readonly writers: RowsBatchWriter[];
  /** Mask of the nodes rows are placed on. */
  healthy = 0;
  rows = 0;
  under = 0;
  rerouted = 0;
  unplaced = 0;
  private mask = 0;
  private topOnly = false;
  private readonly rank: Int32Array;
  private readonly w: Float64Array;
  private readonly place = { rerouted: false };

  constructor(
    private readonly seeds: readonly SeriesHash[],
    private readonly rf: number,
    private readonly maxPos: number,
  ) {
    this.writers = seeds.map(() => new RowsBatchWriter(64 * 1024));
    this.rank = new Int32Array(seeds.length);
    this.w = new Float64Array(seeds.length);
  }

  /** Bytes held by the per-node batches. */
  get capacity(): number {
    let n = 0;
    for (const w of this.writers) n += w.capacity;
    return n;
  }

  reset(healthy: number): void {
    for (const w of this.writers) w.reset();
    this.healthy = healthy;
    this.rows = this.under = this.rerouted = this.unplaced = 0;
    this.mask = 0;
    // RF=1 with every node up (the common case): a series goes to its top-weighted node.
    this.topOnly = this.rf === 1 && healthy === (this.seeds.length === 32 ? -1 : (1 << this.seeds.length) - 1);
  }

  addHashedName(src: Uint8Array, off: number, len: number, hashLo: number, hashHi: number, timestampMs: number, value: number): void {
    for (let x = this.place1(hashLo, hashHi); x !== 0; x &= x - 1) this.writers[31 - Math.clz32(x & -x)]!.addName(src, off, len, timestampMs, value);
  }

  addRecordsName(src: DataView, start: number, end: number, len: number, account: number, project: number, hashLo: number, hashHi: number, timestampMs: number, value: number): void {
    for (let x = this.place1(hashLo, hashHi); x !== 0; x &= x - 1) {
      this.writers[31 - Math.clz32(x & -x)]!.addRecordsName(src, start, end, len, account, project, hashLo, hashHi, timestampMs, value);
    }
  }

  /** Places the first row of a series: its nodes (the mask later rows of the series reuse), the row counted. */
  private place1(hashLo: number, hashHi: number): number {
    if (this.topOnly) {
      // rankNodes' first node: the highest weight, the lowest index on a tie.
      const seeds = this.seeds;
      let best = 0;
      let bestW = weight(hashLo, hashHi, seeds[0]!);
      for (let i = 1; i < seeds.length; i++) {
        const w = weight(hashLo, hashHi, seeds[i]!);
        if (w > bestW) {
          bestW = w;
          best = i;
        }
      }
      this.mask = 1 << best;
      this.rows++;
      return this.mask;
    }
    rankNodes(hashLo, hashHi, this.seeds, this.rank, 0, this.w);
    const m = placement(this.rank, 0, this.maxPos, this.rf, this.healthy, this.place);
    this.mask = m;
    this.count(m);
    return m;
  }

  addSameName(timestampMs: number, value: number): void {
    const m = this.mask;
    if (this.topOnly) this.rows++;
    else this.count(m);
    for (let x = m; x !== 0; x &= x - 1) this.writers[31 - Math.clz32(x & -x)]!.addSameName(timestampMs, value);
  }

  private count(m: number): void {
    this.rows++;
    if (m === 0) this.unplaced++;
    else {
      if (popcount(m) < this.rf) this.under++;
      if (this.place.rerouted) this.rerouted++;
    }
  }
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}
