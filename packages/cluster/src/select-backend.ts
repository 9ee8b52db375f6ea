import { create } from "@bufbuild/protobuf";
import {
  BadDataError,
  compareByLabels,
  compareLabels,
  DAY_MS,
  decodeMetricName,
  ExecutionError,
  TimeoutError,
  Trace,
  UnavailableError,
  type LabelMatcher,
  type Labels,
  type Logger,
  type MetricsRegistry,
  type Tenant,
} from "@strata/core";
import { cluster, RpcClient, SearchFrameReader, SearchServiceDefinition, type CallOptions, type ChannelSecurity, type grpc } from "@strata/protocol";
import { emptySeriesSet, seriesSetOf, type SelectHints, type SelectWindows, type Series, type SeriesSet, type SeriesStream } from "@strata/promql";
import type { Answer, MetricMetadata, RawSeries, SearchOptions, SelectBackend, SelectQuerier, TsdbStatus, TsdbStatusRequest } from "./select-types.js";
import { BlockRefs } from "./block-refs.js";
import { SampleArena } from "./decode.js";
import { decodeInline, EventLoopSlice, type DecodePool } from "./decode-pool.js";
import { BlockSeriesStream, labelsSortKeyAt, unmarshalBlocks, type StreamEntry } from "./select-stream.js";
import { fromGrpcError } from "./grpc-errors.js";
import { parseSearchTrace, traceRemote, type SearchTrace } from "./search-trace.js";
import { NOT_ENDED, SearchStreams, type FrameEnd } from "./search-streams.js";
import { MetaCache } from "./meta-cache.js";

/**
 * SelectBackend over the storage cluster: every call fans out to all storage nodes in parallel,
 * merges per series across nodes (replicas included: equal samples collapse to one), applies
 * -dedup.minScrapeInterval, and decides completeness: with fewer than replicationFactor nodes
 * failing every series still has a live replica, so the answer is complete; otherwise it is
 * partial (or a 503 when partial answers are denied).
 */

type SearchClient = RpcClient<typeof SearchServiceDefinition>;

interface Node {
  readonly addr: string;
  readonly client: SearchClient;
  /** Long-lived SearchStream_v1 streams for this node's searches. */
  readonly searches: SearchStreams;
  healthy: boolean;
  lastError: string;
  /** The open WatchIndex_v1 stream, if any; `watching` once its first message arrived. */
  watch: grpc.ClientReadableStream<cluster.WatchIndexResponse> | undefined;
  watching: boolean;
}

export interface ClusterBackendOptions {
  readonly nodes: readonly string[];
  readonly replicationFactor: number;
  readonly dedupIntervalMs: number;
  /** Do not wait for the replicationFactor-1 slowest nodes (complete answers either way). */
  readonly skipSlowReplicas: boolean;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** Computes rollups of wide streamed selections on worker threads; without it everything runs inline. */
  readonly decoder?: DecodePool;
  /** mTLS to the storage nodes (-cluster.tls); plain without it. */
  readonly channel?: ChannelSecurity;
  /** Entries of the label names / label values / metadata cache (0: no cache). */
  readonly metaCacheEntries?: number;
  /** How long an entry of that cache lives (META_CACHE_TTL_MS; tests shorten it). */
  readonly metaCacheTtlMs?: number;
}

/** Cached label sets of metric names (cleared when full). */
const LABELS_CACHE_ENTRIES = 200_000;
/** Default entries of the index-answer cache, and how long an entry may live (see MetaCache). */
const META_CACHE_ENTRIES = 10_000; // select: -search.maxMetaCacheEntries
const META_CACHE_TTL_MS = 60_000;
/**
 * A refresh of an index-answer cache entry waits this long after the hit that found it due (at
 * most a quarter of the TTL, so it lands before the entry expires): a dashboard sends its
 * metadata calls in a burst, and refreshes fetched at once would compete with the burst's next
 * calls for select's event loop and the nodes.
 */
const REFRESH_DELAY_MS = 1000;
/** Larger series answers are not cached (the cache counts entries, not bytes). */
const MAX_CACHED_SERIES = 10_000;
/** Most series of a streamed selection sorted by byte keys (labelsSortKey); wider ones compare labels. */
const SORT_KEYS_MAX_SERIES = 50_000;
/** Wait before reopening a WatchIndex_v1 stream that ended. */
const WATCH_RETRY_MS = 1000;

/**
 * A series' blocks as they came off the storage streams: the chain of their rows in the search's
 * BlockRefs (positions in the received frames, no object per block), where its metric name is,
 * and its sample count.
 */
interface Collected {
  /** The frame (index in the refs) holding the canonical metric name, and its bytes there. */
  readonly nameFrame: number;
  readonly nameStart: number;
  readonly nameEnd: number;
  /** First and last row of the blocks' chain. */
  readonly first: number;
  last: number;
  samples: number;
  /**
   * A block starts at or before the selection's maxT. A series without one has samples only in
   * the dedup interval read past maxT: it is not in the answer, nor counted against maxSeries.
   */
  answered: boolean;
}

interface FanOut<T> {
  readonly results: T[];
  readonly isPartial: boolean;
  readonly warnings: string[];
}

const { BlockEncoding, LabelMatcher_Type } = cluster;

const MATCH_TYPES: Record<LabelMatcher["type"], cluster.LabelMatcher_Type> = {
  "=": LabelMatcher_Type.EQ,
  "!=": LabelMatcher_Type.NEQ,
  "=~": LabelMatcher_Type.RE,
  "!~": LabelMatcher_Type.NRE,
};

function toProtoMatchers(ms: readonly LabelMatcher[]): cluster.LabelMatcher[] {
  return ms.map((m) => create(cluster.LabelMatcherSchema, { type: MATCH_TYPES[m.type], name: m.name, value: m.value }));
}

function protoTenant(t: Tenant): cluster.Tenant {
  return create(cluster.TenantSchema, { accountId: t.accountID, projectId: t.projectID });
}

function searchQuery(tenant: Tenant, sets: readonly (readonly LabelMatcher[])[], minT: number, maxT: number, opts: SearchOptions): cluster.SearchQuery {
  return create(cluster.SearchQuerySchema, {
    tenant: protoTenant(tenant),
    minTimestampMs: BigInt(Math.floor(minT)),
    maxTimestampMs: BigInt(Math.ceil(maxT)),
    matcherGroups: sets.map((s) => ({ matchers: toProtoMatchers(s) })),
    maxSeries: Math.min(opts.maxSeries, 0xffffffff),
    deadlineUnixMs: BigInt(Math.floor(opts.deadline)),
  });
}

/**
 * HTTP/2 flow-control window select opens to each storage node (per stream and per connection;
 * HTTP/2's default is 64 KiB). A search streams megabytes (2.4 MB from a node for `filesystem
 * used %` over 7 days of 10 hosts, 8.9 MB for `sum by (mode) (rate(node_cpu_seconds_total[5m]))`):
 * with 64 KiB the node stops every 64 KiB until select's event loop has read the data and sent a
 * WINDOW_UPDATE, one scheduler round trip of both processes each time. Select reads every search
 * stream to its end as it arrives, so the window adds no memory a query would not hold anyway;
 * at most 4 MiB per node and stream arrive ahead of select's reading.
 */
export const SEARCH_FLOW_CONTROL_WINDOW = 4 << 20;
const SEARCH_CHANNEL_OPTIONS = { "grpc-node.flow_control_window": SEARCH_FLOW_CONTROL_WINDOW } as const;

export class ClusterSelectBackend implements SelectBackend {
  private readonly nodeList: Node[];
  private readonly rf: number;
  private readonly dedupIntervalMs: number;
  private readonly skipSlowReplicas: boolean;
  private readonly log: Logger;
  private readonly pingTimer: NodeJS.Timeout;
  private readonly decoder: DecodePool | undefined;
  private readonly labelsCache = new Map<string, Labels>();
  private readonly metaCache: MetaCache;
  /** Index-answer cache refreshes waiting for refreshTimer. */
  private readonly dueRefreshes: (() => void)[] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  private readonly refreshDelayMs: number;
  private closed = false;

  constructor(opts: ClusterBackendOptions) {
    if (opts.nodes.length === 0) throw new BadDataError("-storageNode is empty: list every storage node's select port (host:8401)");
    this.nodeList = opts.nodes.map((addr) => {
      const client = new RpcClient(SearchServiceDefinition, addr, { ...SEARCH_CHANNEL_OPTIONS, ...opts.channel?.options }, opts.channel?.credentials);
      return { addr, client, searches: new SearchStreams(client), healthy: true, lastError: "", watch: undefined, watching: false };
    });
    this.rf = Math.max(1, opts.replicationFactor);
    this.dedupIntervalMs = opts.dedupIntervalMs;
    this.skipSlowReplicas = opts.skipSlowReplicas;
    this.log = opts.log;
    this.decoder = opts.decoder;
    for (const n of this.nodeList) {
      opts.metrics.gauge(`strata_select_storage_node_up{addr="${n.addr}"}`, "1 when the storage node answered its last request.", () => (n.healthy ? 1 : 0));
    }
    this.pingTimer = setInterval(() => void this.pingAll(), 5000);
    this.pingTimer.unref();
    const ttlMs = opts.metaCacheTtlMs ?? META_CACHE_TTL_MS;
    this.metaCache = new MetaCache(opts.metaCacheEntries ?? META_CACHE_ENTRIES, ttlMs);
    this.refreshDelayMs = Math.min(REFRESH_DELAY_MS, ttlMs / 4);
    const mc = this.metaCache;
    opts.metrics.gauge("strata_select_meta_cache_entries", "Cached label names, label values and metadata answers.", () => mc.size);
    opts.metrics.gauge("strata_select_meta_cache_hits_total", "Label names, label values and metadata calls answered from the cache.", () => mc.hits);
    opts.metrics.gauge("strata_select_meta_cache_misses_total", "Label names, label values and metadata calls asked of the storage nodes.", () => mc.misses);
    opts.metrics.gauge("strata_select_meta_cache_refreshes_total", "Index-answer cache entries fetched again in the background (read when older than half their 60 s lifetime).", () => mc.refreshes);
    if ((opts.metaCacheEntries ?? META_CACHE_ENTRIES) > 0) for (const n of this.nodeList) this.watch(n);
  }

  /**
   * Keeps a WatchIndex_v1 stream open to `n`: every message (the first one included) and every
   * end of the stream drops the index-answer cache; it is reopened after WATCH_RETRY_MS.
   */
  private watch(n: Node): void {
    if (this.closed) return;
    const call = n.client.stream("WatchIndex_v1", create(cluster.WatchIndexRequestSchema));
    n.watch = call;
    call.on("data", () => {
      this.metaCache.invalidate();
      n.watching = true;
    });
    const down = (): void => {
      if (n.watch !== call) return;
      n.watch = undefined;
      n.watching = false;
      this.metaCache.invalidate();
      if (!this.closed) setTimeout(() => this.watch(n), WATCH_RETRY_MS).unref();
    };
    call.on("error", down);
    call.on("end", down);
    call.on("status", down);
  }

  /**
   * `fetch`'s answer, from the cache while every node's index watch is up. A hit on an entry due
   * for a refresh (MetaCache.claimRefresh) fetches it again refreshDelayMs later, in the
   * background.
   */
  private cached<T>(key: string, opts: SearchOptions, fetch: (opts: SearchOptions) => Promise<Answer<T[]>>, maxItems = Infinity): Promise<Answer<readonly T[]>> {
    if (!this.metaUsable()) return fetch(opts);
    const hit = this.metaCache.get<T>(key);
    if (hit === undefined) return this.fetchAndStore(key, opts, fetch, maxItems);
    if (this.metaCache.claimRefresh(key)) this.scheduleRefresh(key, opts, fetch, maxItems);
    return Promise.resolve({ value: hit, isPartial: false, warnings: [] });
  }

  private metaUsable(): boolean {
    return this.nodeList.every((n) => n.watching);
  }

  private async fetchAndStore<T>(key: string, opts: SearchOptions, fetch: (opts: SearchOptions) => Promise<Answer<T[]>>, maxItems: number): Promise<Answer<readonly T[]>> {
    const epoch = this.metaCache.epoch;
    const a = await fetch(opts);
    if (!a.isPartial && a.value.length <= maxItems && this.metaUsable()) this.metaCache.set(key, epoch, a.value);
    return a;
  }

  /**
   * Fetches `key` again after refreshDelayMs with the request's limits and time budget but not
   * its signal (the request has its answer by then).
   */
  private scheduleRefresh<T>(key: string, opts: SearchOptions, fetch: (opts: SearchOptions) => Promise<Answer<T[]>>, maxItems: number): void {
    const budgetMs = Math.max(0, opts.deadline - Date.now());
    const { signal: _requestSignal, ...limits } = opts;
    this.dueRefreshes.push(() => {
      this.fetchAndStore(key, { ...limits, deadline: Date.now() + budgetMs }, fetch, maxItems)
        .catch((err: unknown) => this.log.debug({ err: String(err) }, "index-answer cache refresh failed"))
        .finally(() => this.metaCache.endRefresh(key));
    });
    if (this.refreshTimer !== undefined) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      if (this.closed) return;
      for (const run of this.dueRefreshes.splice(0)) run();
    }, this.refreshDelayMs);
    this.refreshTimer.unref();
  }

  nodes(): readonly { addr: string; healthy: boolean }[] {
    return this.nodeList.map((n) => ({ addr: n.addr, healthy: n.healthy }));
  }

  private async pingAll(): Promise<void> {
    await Promise.all(
      this.nodeList.map(async (n) => {
        try {
          await n.client.unary("Ping_v1", create(cluster.PingRequestSchema), { deadline: Date.now() + 2000 });
          n.healthy = true;
        } catch (err) {
          n.healthy = false;
          n.lastError = err instanceof Error ? err.message : String(err);
        }
      }),
    );
  }

  /**
   * Runs `fn` on every node and applies the replication rule to failures. With
   * skipSlowReplicas, once all but replicationFactor-1 nodes have answered, every series has
   * been seen (each lives on replicationFactor distinct nodes), so the slowest nodes are not
   * waited for: a node that hangs (a cut network drops packets rather than refusing them) costs
   * nothing while fewer than replicationFactor nodes are affected.
   */
  private fanOut<T>(opts: SearchOptions, fn: (n: Node, call: CallOptions) => Promise<T>, waitForAll = false): Promise<FanOut<T>> {
    const total = this.nodeList.length;
    const enough = this.skipSlowReplicas && !waitForAll ? Math.max(1, total - (this.rf - 1)) : total;
    return new Promise((resolve, reject) => {
      const results: T[] = [];
      const failed: string[] = [];
      const controllers = this.nodeList.map(() => new AbortController());
      const settled = this.nodeList.map(() => false);
      let pending = total;
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        opts.signal?.removeEventListener("abort", onAbort);
        // Only calls still running are cancelled (the answered ones need nothing).
        if (results.length + failed.length < total) {
          const reason = new Error("not needed: enough replicas answered");
          controllers.forEach((c, i) => {
            if (!settled[i]) c.abort(reason);
          });
        }
        const skipped = total - results.length - failed.length;
        if (failed.length === 0) return resolve({ results, isPartial: false, warnings: [] });
        if (results.length === 0) return reject(new UnavailableError(`no storage node answered: ${failed.join("; ")}`));
        if (failed.length + skipped < this.rf) return resolve({ results, isPartial: false, warnings: [] });
        const msg = `partial response: ${failed.length} of ${total} storage nodes unavailable (replicationFactor=${this.rf}): ${failed.join("; ")}`;
        if (opts.denyPartialResponse) return reject(new UnavailableError(`cannot answer completely (deny_partial_response): ${msg}`));
        this.log.warn({ failed }, "partial response");
        resolve({ results, isPartial: true, warnings: [msg] });
      };
      const onAbort = () => {
        if (done) return;
        done = true;
        for (const c of controllers) c.abort(opts.signal?.reason);
        reject(opts.signal?.reason instanceof Error ? opts.signal.reason : new TimeoutError("query canceled"));
      };
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      this.nodeList.forEach((node, i) => {
        fn(node, { deadline: opts.deadline, signal: controllers[i]!.signal }).then(
          (v) => {
            settled[i] = true;
            node.healthy = true;
            if (done) return;
            results.push(v);
            pending--;
            if (results.length >= enough || pending === 0) finish();
          },
          (err: unknown) => {
            settled[i] = true;
            if (done) return;
            const reqErr = fromGrpcError(err);
            if (reqErr) {
              done = true;
              for (const c of controllers) c.abort(reqErr);
              opts.signal?.removeEventListener("abort", onAbort);
              return reject(reqErr);
            }
            node.healthy = false;
            node.lastError = err instanceof Error ? err.message : String(err);
            failed.push(`${node.addr}: ${node.lastError}`);
            pending--;
            if (pending === 0) finish();
          },
        );
      });
    });
  }

  /** Streams every matching series' blocks from all nodes, grouped by metric name. */
  private async searchBlocks(
    tenant: Tenant,
    sets: readonly (readonly LabelMatcher[])[],
    minT: number,
    maxT: number,
    opts: SearchOptions,
    trace = Trace.off,
  ): Promise<{ series: Map<string, Collected>; refs: BlockRefs; isPartial: boolean; warnings: string[] }> {
    // Every node's blocks, as rows into their frames (the nodes' streams append in turn: one event loop).
    const refs = new BlockRefs();
    const tooMany = () => tooManySeries(opts);
    const fanTrace = trace.child(`search ${this.nodeList.length} storage nodes in parallel`);
    // One request for every node, serialized once. Select reads nothing outside [minT, maxT]
    // but dedups before trimming (a sample up to one interval after maxT can replace one before
    // it): the nodes send blocks up to maxT + the dedup interval, and may cut long blocks to
    // that range (cut_blocks).
    const query = searchQuery(tenant, sets, minT, maxT, opts);
    const request = this.nodeList[0]!.client.encode(
      "Search_v1",
      create(cluster.SearchRequestSchema, {
        query,
        acceptedEncodings: [BlockEncoding.STORAGE_V1],
        trace: fanTrace.enabled,
        cutBlocks: true,
        dedupIntervalMs: BigInt(Math.max(0, this.dedupIntervalMs)),
      }),
    );
    const fan = await this.fanOut(opts, async (n, call) => {
      // Each node's blocks go into a node-local map first, so a node failing midway adds nothing.
      const local = new Map<string, Collected>();
      const nodeTrace = fanTrace.child(`storage node ${n.addr}`);
      const t0 = performance.now();
      let first = -1;
      let blocks = 0;
      let bytes = 0;
      let remote: SearchTrace | undefined;
      const traceNode = (outcome: string) => {
        if (!nodeTrace.enabled) return;
        const total = performance.now() - t0;
        if (remote) {
          traceRemote(nodeTrace, remote);
          nodeTrace.addDone(`transfer (gRPC) and receive ${blocks} blocks, ${bytes} bytes`, total - remote.totalMs);
        } else {
          // A node that does not send its timings (an older version): what select saw.
          const wait = first < 0 ? total : first;
          nodeTrace.addDone("wait for the first block (index search on the node)", wait);
          nodeTrace.addDone(`read and transfer ${blocks} blocks, ${bytes} bytes`, total - wait);
        }
        nodeTrace.done(`storage node ${n.addr}: ${outcome}`);
      };
      const r = new SearchFrameReader();
      let prev: Collected | undefined;
      const onFrame = (frame: Buffer): FrameEnd => {
        if (first < 0) first = performance.now() - t0;
        bytes += frame.length;
        // Read through a plain Uint8Array: the reader keeps positions in it, and the blocks
        // stay rows of `refs` into it (no view, no object per block).
        const view = new Uint8Array(frame.buffer, frame.byteOffset, frame.length);
        const f = refs.addFrame(view);
        r.reset(view);
        while (r.next()) {
          blocks++;
          let key: string | undefined;
          if (r.nameEnd > r.nameStart) {
            key = frame.toString("latin1", r.nameStart, r.nameEnd);
            prev = local.get(key);
          }
          if (!prev && key === undefined) throw new Error(`storage node ${n.addr} sent a block without a metric name`);
          if (r.encoding !== BlockEncoding.STORAGE_V1) throw new Error(`storage node ${n.addr} sent unsupported block encoding ${r.encoding}`);
          const row = refs.add(f, r.dataStart, r.dataEnd);
          if (!prev) local.set(key!, (prev = { nameFrame: f, nameStart: r.nameStart, nameEnd: r.nameEnd, first: row, last: row, samples: 0, answered: false }));
          else {
            refs.link(prev.last, row);
            prev.last = row;
          }
          prev.samples += r.rowsCount;
          if (r.minT <= maxT) prev.answered = true;
        }
        if (!r.ended) return NOT_ENDED;
        bytes -= r.endBytes;
        const e = r.end();
        return { ended: true, code: e.code, details: e.details, trace: e.trace };
      };
      const trailer = await n.searches.search(request, call, onFrame);
      if (nodeTrace.enabled) remote = parseSearchTrace(trailer);
      // A node that fails stays open in the trace (its step reports the time until the answer).
      traceNode(`${local.size} series`);
      return local;
    }).catch((err: unknown) => {
      // A node over the series limit (the search passes it maxSeries): name the flag select was given.
      throw err instanceof ExecutionError && err.code === "STRATA_LIMIT_EXCEEDED" ? tooMany() : err;
    });
    fanTrace.done(`search ${this.nodeList.length} storage nodes in parallel${fan.isPartial ? " (partial answer)" : ""}`);
    const mergeTrace = trace.child("merge series across nodes");
    // The largest node's map is the merged one: only the others' series are looked up.
    let largest = 0;
    for (let i = 1; i < fan.results.length; i++) if (fan.results[i]!.size > fan.results[largest]!.size) largest = i;
    const series = fan.results[largest] ?? new Map<string, Collected>();
    for (let i = 0; i < fan.results.length; i++) {
      if (i === largest) continue;
      for (const [key, v] of fan.results[i]!) {
        const e = series.get(key);
        if (e) {
          refs.link(e.last, v.first);
          e.last = v.last;
          e.samples += v.samples;
          e.answered ||= v.answered;
        } else series.set(key, v);
      }
    }
    for (const [key, v] of series) if (!v.answered) series.delete(key);
    mergeTrace.done(`merge series across nodes: ${series.size} series`);
    if (series.size > opts.maxSeries) throw tooMany();
    return { series, refs, isPartial: fan.isPartial, warnings: fan.warnings };
  }

  private async mergedSeries(
    tenant: Tenant,
    sets: readonly (readonly LabelMatcher[])[],
    minT: number,
    maxT: number,
    opts: SearchOptions,
    arena: SampleArena,
    trace = Trace.off,
    windows?: SelectWindows,
  ): Promise<{ list: Series[]; isPartial: boolean; warnings: string[] }> {
    const r = await this.searchBlocks(tenant, sets, minT, maxT, opts, trace);
    const entries = [...r.series];
    const blocks = entries.map(([, v]) => unmarshalBlocks(r.refs.views(v.first)));
    const decodeTrace = trace.child("decode blocks");
    const decoded = await decodeInline(blocks, minT, maxT, this.dedupIntervalMs, arena, windows);
    decodeTrace.done(`decode blocks of ${entries.length} series`);
    const sortTrace = trace.child("sort series by labels");
    const list: Series[] = [];
    const slice = new EventLoopSlice();
    for (let i = 0; i < entries.length; i++) {
      if (slice.due()) await slice.yield();
      const d = decoded[i]!;
      if (d.timestamps.length === 0) continue;
      const [key, c] = entries[i]!;
      list.push({ labels: this.labelsOf(key, nameOf(r.refs, c)), timestamps: d.timestamps, values: d.values });
    }
    list.sort(compareByLabels);
    sortTrace.done(`sort ${list.length} series by labels`);
    return { list, isPartial: r.isPartial, warnings: r.warnings };
  }

  /**
   * Labels of a metric name (canonical bytes; `key` is their latin1 string), cached: a dashboard
   * asks for the same series again and again. Labels are immutable, so entries are shared.
   */
  private labelsOf(key: string, name: Uint8Array): Labels {
    let l = this.labelsCache.get(key);
    if (l === undefined) {
      if (this.labelsCache.size >= LABELS_CACHE_ENTRIES) this.labelsCache.clear();
      l = decodeMetricName(name).labels;
      this.labelsCache.set(key, l);
    }
    return l;
  }

  querier(tenant: Tenant, opts: SearchOptions): SelectQuerier {
    // The samples of every selection of this query; reused by later queries once it is closed.
    const arena = new SampleArena();
    // Plain fields, not getters over a state object: an object literal with accessors is built
    // through the runtime (slow, per query).
    const state = {
      isPartial: false,
      warnings: [] as string[],
      select: async (matchers: readonly LabelMatcher[], minT: number, maxT: number, hints: SelectHints, signal?: AbortSignal): Promise<SeriesSet> => {
        const o = signal ? { ...opts, signal } : opts;
        const r = await this.mergedSeries(tenant, [matchers], minT, maxT, o, arena, hints.trace, hints.windows);
        if (r.isPartial) {
          state.isPartial = true;
          for (const w of r.warnings) if (!state.warnings.includes(w)) state.warnings.push(w);
        }
        return r.list.length === 0 ? emptySeriesSet : seriesSetOf(r.list);
      },
      selectStream: async (matchers: readonly LabelMatcher[], minT: number, maxT: number, hints: SelectHints, signal?: AbortSignal): Promise<SeriesStream> => {
        const o = signal ? { ...opts, signal } : opts;
        const trace = hints.trace ?? Trace.off;
        const r = await this.searchBlocks(tenant, [matchers], minT, maxT, o, trace);
        if (r.isPartial) {
          state.isPartial = true;
          for (const w of r.warnings) if (!state.warnings.includes(w)) state.warnings.push(w);
        }
        const entries: StreamEntry[] = [];
        // Sort keys cost ~120 bytes a series while the search's frames are held: the widest
        // selections (issue 18's 100,000-series memory bound) sort without them.
        const keyed = r.series.size <= SORT_KEYS_MAX_SERIES;
        const frames = r.refs.frames;
        for (const [key, c] of r.series) {
          // The name's bytes are read in their frame (no view per series) for the sort key, and
          // cut out only on a labels cache miss.
          const labels = this.labelsCache.get(key) ?? this.labelsOf(key, nameOf(r.refs, c));
          entries.push({ labels, first: c.first, samples: c.samples, sortKey: keyed ? labelsSortKeyAt(frames[c.nameFrame]!, c.nameStart, c.nameEnd, entries.length) : undefined });
        }
        r.series.clear();
        const sortTrace = trace.child("sort series by labels");
        const stream = new BlockSeriesStream(entries, r.refs, minT, maxT, this.dedupIntervalMs, this.decoder, r.warnings, undefined, hints.windows);
        sortTrace.done(`sort ${entries.length} series by labels (decoded batch by batch while evaluating)`);
        return stream;
      },
      labelNames: async (matchers: readonly LabelMatcher[], minT: number, maxT: number): Promise<string[]> => {
        return [...(await this.labelNames(tenant, matchers.length ? [matchers] : [], minT, maxT, 0, opts)).value];
      },
      labelValues: async (name: string, matchers: readonly LabelMatcher[], minT: number, maxT: number): Promise<string[]> => {
        return [...(await this.labelValues(tenant, name, matchers.length ? [matchers] : [], minT, maxT, 0, opts)).value];
      },
      close: async () => arena.release(),
    };
    return state;
  }

  labelNames(tenant: Tenant, sets: readonly (readonly LabelMatcher[])[], minT: number, maxT: number, limit: number, opts: SearchOptions): Promise<Answer<readonly string[]>> {
    return this.cached(MetaCache.key("labels", tenant, minT, maxT, [limit], sets), opts, async (o) => {
      const query = searchQuery(tenant, sets, minT, maxT, o);
      const fan = await this.fanOut(o, (n, call) =>
        n.client.unary("LabelNames_v1", create(cluster.LabelNamesRequestSchema, { query, limit }), call),
      );
      return { value: unionSorted(fan.results.map((r) => r.names), limit), isPartial: fan.isPartial, warnings: fan.warnings };
    });
  }

  labelValues(
    tenant: Tenant,
    name: string,
    sets: readonly (readonly LabelMatcher[])[],
    minT: number,
    maxT: number,
    limit: number,
    opts: SearchOptions,
  ): Promise<Answer<readonly string[]>> {
    return this.cached(MetaCache.key("values", tenant, minT, maxT, [name, limit], sets), opts, async (o) => {
      const query = searchQuery(tenant, sets, minT, maxT, o);
      const fan = await this.fanOut(o, (n, call) =>
        n.client.unary("LabelValues_v1", create(cluster.LabelValuesRequestSchema, { query, labelName: name, limit }), call),
      );
      return { value: unionSorted(fan.results.map((r) => r.values), limit), isPartial: fan.isPartial, warnings: fan.warnings };
    });
  }

  /**
   * The series matching `sets` with samples on the days of [minT, maxT], by the nodes' per-day
   * indexes (SearchMetricNames_v1, no block read), as VictoriaMetrics answers /api/v1/series.
   * Cached like label names (only the index decides the answer) up to MAX_CACHED_SERIES series.
   */
  series(tenant: Tenant, sets: readonly (readonly LabelMatcher[])[], minT: number, maxT: number, limit: number, opts: SearchOptions): Promise<Answer<readonly Labels[]>> {
    return this.cached(MetaCache.key("series", tenant, minT, maxT, [limit, opts.maxSeries], sets), opts, async (o) => {
      const query = searchQuery(tenant, sets, minT, maxT, o);
      const fan = await this.fanOut(o, (n, call) =>
        n.client.unary("SearchMetricNames_v1", create(cluster.SearchMetricNamesRequestSchema, { query }), call),
      ).catch((err: unknown) => {
        throw err instanceof ExecutionError && err.code === "STRATA_LIMIT_EXCEEDED" ? tooManySeries(opts) : err;
      });
      // Replicas list a series once per copy.
      const seen = new Set<string>();
      const out: Labels[] = [];
      for (const r of fan.results) {
        for (const name of r.metricNames) {
          const key = Buffer.from(name.buffer, name.byteOffset, name.byteLength).toString("latin1");
          if (seen.has(key)) continue;
          seen.add(key);
          out.push(this.labelsOf(key, name));
        }
      }
      if (out.length > opts.maxSeries) throw tooManySeries(opts);
      out.sort(compareLabels);
      return { value: limit > 0 ? out.slice(0, limit) : out, isPartial: fan.isPartial, warnings: fan.warnings };
    }, MAX_CACHED_SERIES);
  }

  async seriesCount(tenant: Tenant, opts: SearchOptions): Promise<Answer<number>> {
    const fan = await this.fanOut(opts, (n, call) =>
      n.client.unary("SeriesCount_v1", create(cluster.SeriesCountRequestSchema, { tenant: protoTenant(tenant) }), call),
    );
    // Replicas count a series once per copy; VictoriaMetrics reports the sum as well, divided here by RF.
    const total = fan.results.reduce((a, r) => a + Number(r.count), 0);
    return { value: Math.round(total / this.rf), isPartial: fan.isPartial, warnings: fan.warnings };
  }

  async tsdbStatus(tenant: Tenant, req: TsdbStatusRequest, opts: SearchOptions): Promise<Answer<TsdbStatus>> {
    const fan = await this.fanOut(opts, (n, call) =>
      n.client.unary(
        "TsdbStatus_v1",
        create(cluster.TsdbStatusRequestSchema, {
          tenant: protoTenant(tenant),
          date: req.date,
          topN: req.topN,
          focusLabel: req.focusLabel,
          matchers: toProtoMatchers(req.matchers),
        }),
        call,
      ),
    );
    const div = this.rf;
    const merge = (lists: { name: string; value: bigint }[][]) => {
      const m = new Map<string, number>();
      for (const l of lists) for (const nv of l) m.set(nv.name, (m.get(nv.name) ?? 0) + Number(nv.value));
      return [...m.entries()]
        .map(([name, value]) => ({ name, value: Math.round(value / div) }))
        .sort((a, b) => b.value - a.value || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .slice(0, req.topN);
    };
    const rs = fan.results;
    const value: TsdbStatus = {
      totalSeries: Math.round(rs.reduce((a, r) => a + Number(r.totalSeries), 0) / div),
      totalLabelValuePairs: Math.round(rs.reduce((a, r) => a + Number(r.totalLabelValuePairs), 0) / div),
      seriesCountByMetricName: merge(rs.map((r) => r.seriesCountByMetricName)),
      seriesCountByLabelName: merge(rs.map((r) => r.seriesCountByLabelName)),
      seriesCountByFocusLabelValue: merge(rs.map((r) => r.seriesCountByFocusLabelValue)),
      seriesCountByLabelValuePair: merge(rs.map((r) => r.seriesCountByLabelValuePair)),
      // Distinct values per label cannot be summed across nodes; the largest count is a lower bound.
      labelValueCountByLabelName: (() => {
        const m = new Map<string, number>();
        for (const r of rs) for (const nv of r.labelValueCountByLabelName) m.set(nv.name, Math.max(m.get(nv.name) ?? 0, Number(nv.value)));
        return [...m.entries()].map(([name, value]) => ({ name, value })).sort((a, b) => b.value - a.value || (a.name < b.name ? -1 : 1)).slice(0, req.topN);
      })(),
    };
    return { value, isPartial: fan.isPartial, warnings: fan.warnings };
  }

  metadata(tenant: Tenant, metric: string, limit: number, opts: SearchOptions): Promise<Answer<readonly MetricMetadata[]>> {
    return this.cached(MetaCache.key("metadata", tenant, 0, 0, [metric, limit], []), opts, async (o) => {
      const fan = await this.fanOut(o, (n, call) =>
        n.client.unary(
          "Metadata_v1",
          create(cluster.MetadataRequestSchema, { tenant: protoTenant(tenant), metric, limit }),
          call,
        ),
      );
      const seen = new Map<string, MetricMetadata>();
      for (const r of fan.results) {
        for (const m of r.metadata) {
          const key = `${m.metricFamilyName}\u0000${m.help}\u0000${m.unit}`;
          if (!seen.has(key)) seen.set(key, { metricFamilyName: m.metricFamilyName, type: metadataType(m.type), help: m.help, unit: m.unit });
        }
      }
      const list = [...seen.values()].sort((a, b) => (a.metricFamilyName < b.metricFamilyName ? -1 : a.metricFamilyName > b.metricFamilyName ? 1 : 0));
      return { value: limit > 0 ? list.slice(0, limit) : list, isPartial: fan.isPartial, warnings: fan.warnings };
    });
  }

  async deleteSeries(tenant: Tenant, sets: readonly (readonly LabelMatcher[])[], opts: SearchOptions): Promise<number> {
    // A delete must reach every node: a node that misses it would bring the series back.
    const query = searchQuery(tenant, sets, 0, Date.now() + DAY_MS, opts);
    const fan = await this.fanOut(
      { ...opts, denyPartialResponse: true },
      (n, call) => n.client.unary("DeleteSeries_v1", create(cluster.DeleteSeriesRequestSchema, { query }), call),
      true,
    );
    // The nodes' watch streams report the delete too; dropping the cache here already makes the
    // next call after this one returns miss it, whatever the order their messages arrive in.
    this.metaCache.invalidate();
    if (fan.results.length < this.nodeList.length) {
      throw new UnavailableError("delete_series needs every storage node up: a node that misses the delete would keep the series");
    }
    return Math.round(fan.results.reduce((a, r) => a + Number(r.deleted), 0) / this.rf);
  }

  async exportSeries(
    tenant: Tenant,
    sets: readonly (readonly LabelMatcher[])[],
    minT: number,
    maxT: number,
    opts: SearchOptions,
    onSeries: (s: RawSeries) => void | Promise<void>,
  ): Promise<Answer<number>> {
    const arena = new SampleArena();
    try {
      const r = await this.mergedSeries(tenant, sets, minT, maxT, opts, arena);
      for (const s of r.list) await onSeries(s);
      return { value: r.list.length, isPartial: r.isPartial, warnings: r.warnings };
    } finally {
      arena.release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const n of this.nodeList) n.watch?.cancel();
    for (const n of this.nodeList) n.searches.close();
    clearInterval(this.pingTimer);
    clearTimeout(this.refreshTimer);
    this.dueRefreshes.length = 0;
    for (const n of this.nodeList) n.client.client.close();
  }
}

/** A collected series' canonical metric name: a view into the frame it arrived in. */
function nameOf(refs: BlockRefs, c: Collected): Uint8Array {
  return refs.frames[c.nameFrame]!.subarray(c.nameStart, c.nameEnd);
}

function tooManySeries(opts: SearchOptions): ExecutionError {
  return new ExecutionError(
    `the query selects more than ${opts.maxSeries} series (${opts.maxSeriesFlag ?? "-search.maxSeries"}); narrow it with more specific label matchers`,
    "STRATA_LIMIT_EXCEEDED",
  );
}

function unionSorted(lists: readonly (readonly string[])[], limit: number): string[] {
  const set = new Set<string>();
  for (const l of lists) for (const s of l) set.add(s);
  const out = [...set].sort();
  return limit > 0 ? out.slice(0, limit) : out;
}

function metadataType(t: number | string): string {
  if (typeof t === "string") return t;
  return ["unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset"][t] ?? "unknown";
}
