import { create } from "@bufbuild/protobuf";
import {
  BadDataError,
  errorMessage,
  newMatcher,
  RowsBatchWriter,
  type LabelMatcher,
  type Logger,
  type MatchType,
  type MetricsRegistry,
  type Tenant,
} from "@strata/core";
import { cluster, decodeWriteRows, grpc, SearchFrameWriter, type InsertServiceHandlers, type PreFramedMessage, type SearchServiceHandlers } from "@strata/protocol";
import { BlockCutter, marshalBlockAt, marshaledBlockSize, mergeSeriesBlocks, type RawBlock, type Storage } from "@strata/storage";
import { toGrpcError } from "./grpc-errors.js";
import { SEARCH_TRACE_TRAILER, SearchStats } from "./search-trace.js";

/** Remote-write metric metadata of one family, as the storage node keeps it. */
export interface MetadataRecord {
  readonly family: string;
  readonly type: number;
  readonly help: string;
  readonly unit: string;
}

/** Where the storage node keeps metric metadata (the storage service's MetadataStore). */
export interface MetadataStore {
  /** Returns whether a `get` answer may have changed (WatchIndex_v1 streams are told). */
  put(tenant: Tenant, m: MetadataRecord): boolean;
  get(tenant: Tenant, metric: string, limit: number): readonly MetadataRecord[];
}

const MATCH_TYPES: Record<cluster.LabelMatcher_Type, MatchType> = {
  [cluster.LabelMatcher_Type.EQ]: "=",
  [cluster.LabelMatcher_Type.NEQ]: "!=",
  [cluster.LabelMatcher_Type.RE]: "=~",
  [cluster.LabelMatcher_Type.NRE]: "!~",
};

function tenantOf(t: cluster.Tenant | undefined): Tenant {
  return { accountID: t?.accountId ?? 0, projectID: t?.projectId ?? 0 };
}

function matchersOf(list: readonly cluster.LabelMatcher[]): LabelMatcher[] {
  return list.map((m) => {
    const t = MATCH_TYPES[m.type];
    if (t === undefined) throw new BadDataError(`unknown matcher type ${String(m.type)}`);
    return newMatcher(t, m.name, m.value);
  });
}

interface Query {
  tenant: Tenant;
  minT: number;
  maxT: number;
  groups: LabelMatcher[][];
  maxSeries: number;
}

function queryOf(q: cluster.SearchQuery | undefined): Query {
  if (!q) throw new BadDataError("missing query");
  const groups = q.matcherGroups.map((g) => matchersOf(g.matchers));
  if (groups.length === 0) groups.push([]);
  return {
    tenant: tenantOf(q.tenant),
    minT: Number(q.minTimestampMs),
    maxT: q.maxTimestampMs === 0n ? Number.MAX_SAFE_INTEGER : Number(q.maxTimestampMs),
    groups,
    maxSeries: q.maxSeries,
  };
}

function union(lists: string[][], limit: number): string[] {
  if (lists.length === 1) return lists[0]!;
  const out = [...new Set(lists.flat())].sort();
  return limit > 0 ? out.slice(0, limit) : out;
}

type WatchCall = grpc.ServerWritableStream<cluster.WatchIndexRequest, cluster.WatchIndexResponse | Uint8Array>;

/**
 * The node's WatchIndex_v1 streams. Each gets the change count when it opens and again after
 * every change (`changed()`: the index's onIndexChange, metadata writes that alter an answer).
 * Changes of one synchronous batch (a WriteRows_v1 creating 1000 series) send one message, from a
 * microtask queued before the batch's acknowledgement is sent, so a client that saw its write
 * acknowledged finds select's cache already dropped.
 */
export class IndexWatchers {
  private changes = 0;
  private scheduled = false;
  private readonly calls = new Set<WatchCall>();

  changed(): void {
    this.changes++;
    if (this.scheduled || this.calls.size === 0) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      for (const c of this.calls) c.write(this.message());
    });
  }

  add(call: WatchCall): void {
    this.calls.add(call);
    const drop = (): void => void this.calls.delete(call);
    call.once("cancelled", drop);
    call.once("close", drop);
    call.once("error", drop);
    call.write(this.message());
  }

  /** Ends every stream (shutdown: a grpc server waits for open calls). */
  close(): void {
    for (const c of this.calls) c.end();
    this.calls.clear();
  }

  private message(): cluster.WatchIndexResponse {
    return create(cluster.WatchIndexResponseSchema, { changes: BigInt(this.changes) });
  }
}

/**
 * The node's open SearchStream_v1 streams (select keeps idle ones open between searches). At
 * shutdown `close()` ends the idle ones and each busy one after its search, since a grpc server
 * waits for open calls; a request that still arrives is answered UNAVAILABLE.
 */
export class SearchStreamCalls {
  private readonly open = new Map<SearchStreamCall, () => boolean>();
  private closing = false;

  get closed(): boolean {
    return this.closing;
  }

  /** `idle`: whether the stream has no search in progress. */
  add(call: SearchStreamCall, idle: () => boolean): void {
    this.open.set(call, idle);
    const drop = (): void => void this.open.delete(call);
    call.once("cancelled", drop);
    call.once("close", drop);
    call.once("error", drop);
  }

  /** Ends a busy stream whose search finished, once closing. */
  searched(call: SearchStreamCall): void {
    if (this.closing && this.open.delete(call)) call.end();
  }

  close(): void {
    this.closing = true;
    for (const [call, idle] of this.open) {
      if (!idle()) continue;
      this.open.delete(call);
      call.end();
    }
  }
}

type SearchStreamCall = grpc.ServerDuplexStream<cluster.SearchRequest, cluster.SearchResponse | Uint8Array | PreFramedMessage>;

/** What the storage node's gRPC handlers serve from. */
export interface StorageServerDeps {
  readonly storage: Storage;
  readonly metadata: MetadataStore;
  readonly watch: IndexWatchers;
  /** Open SearchStream_v1 streams (ended at shutdown). */
  readonly searchStreams: SearchStreamCalls;
  readonly dedupIntervalMs: number;
  readonly nodeId: string;
  readonly isReady: () => boolean;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
}

/** Handlers of the insert port: WriteRows_v1 acknowledges after the WAL append. */
export function insertHandlers(d: StorageServerDeps): InsertServiceHandlers {
  const rowsAdded = d.metrics.counter("strata_storage_rpc_rows_added_total", "Rows acknowledged through WriteRows_v1.");
  const writeErrors = d.metrics.counter("strata_storage_rpc_write_errors_total", "WriteRows_v1 calls that failed.");
  const writeDuration = d.metrics.histogram("strata_storage_rpc_write_duration_seconds", "Duration of WriteRows_v1 calls (decompress + WAL append).");
  return {
    WriteRows_v1: (call, cb) => {
      const t0 = process.hrtime.bigint();
      if (!d.isReady()) {
        cb({ code: grpc.status.UNAVAILABLE, details: "storage node is shutting down" });
        return;
      }
      let batch: Uint8Array;
      try {
        batch = decodeWriteRows(call.request);
      } catch (err) {
        writeErrors.inc();
        cb(toGrpcError(err));
        return;
      }
      const n = call.request.rowsCount;
      // The WAL keeps the lz4 payload as it came (it decompressed to exactly `batch`); the
      // storage checks the row count in its validation pass (one walk of the batch, not two).
      d.storage.addRows(batch, call.request.compression === cluster.Compression.LZ4 ? call.request.rows : undefined, n).then(
        () => {
          rowsAdded.add(n);
          writeDuration.observeSince(t0);
          cb(null, create(cluster.WriteRowsResponseSchema, { rowsWritten: n }));
        },
        (err: unknown) => {
          writeErrors.inc();
          d.log.error({ err: errorMessage(err) }, "WriteRows_v1 failed");
          cb(toGrpcError(err));
        },
      );
    },
    WriteMetadata_v1: (call, cb) => {
      let changed = false;
      for (const m of call.request.metadata) {
        if (d.metadata.put(tenantOf(m.tenant), { family: m.metricFamilyName, type: m.type, help: m.help, unit: m.unit })) changed = true;
      }
      if (changed) d.watch.changed();
      cb(null, create(cluster.WriteMetadataResponseSchema, { written: call.request.metadata.length }));
    },
    // Insert's health check: a read-only node is alive but takes no writes (insert reroutes).
    Ping_v1: (_call, cb) => {
      const { retentionMs, futureRetentionMs } = d.storage.retention;
      cb(
        null,
        create(cluster.PingResponseSchema, {
          nodeId: d.nodeId,
          ready: d.isReady(),
          readOnly: d.storage.readOnly,
          retentionMs: BigInt(retentionMs),
          futureRetentionMs: BigInt(futureRetentionMs),
        }),
      );
    },
  };
}

/**
 * A Search_v1 frame is sent before it would pass this many bytes (unless one series is larger).
 * Frames of 124 KiB (under glibc's mmap threshold, so grpc-js' copy of each frame would not
 * fault in fresh pages) measured no less CPU: the per-frame work of grpc-js and HTTP/2 on both
 * sides ate the saving.
 */
const FRAME_BYTES = 1 << 20;
/**
 * Room of a pooled frame writer: a frame plus one more series (a series at 7 days of 15 s
 * samples is ~60 KB), so writers are made at their final size and never grow: growing a writer
 * 64 KiB → 2 MiB copied and zero-filled ~4 MB of fresh memory per frame.
 */
const WRITER_BYTES = FRAME_BYTES + (256 << 10);
/**
 * Frames of one Search_v1 call handed to grpc-js and not yet written out. grpc-js sends a
 * call's messages one at a time (its writable stream queues the others, up to 16), so more
 * frames ahead only hold more writers: with no bound a search of 9 MB held 9 writers at once,
 * more than the pool keeps, and each new one was allocated and grown again (a storage node
 * spent ~30 % of its CPU on a 7-day dashboard in GC and growing writers).
 */
const MAX_FRAMES_IN_FLIGHT = 2;
const NO_NAME = new Uint8Array(0);
/** Most bytes a SeriesBlock's fields take in a frame besides its name and `data` payload. */
const BLOCK_FIELDS_BYTES = 48;
/**
 * With `cut_blocks`, a block of at least this many samples is cut to the search's range when
 * the range covers less than 1/CUT_RATIO of the block's time span (decoding a long block for a
 * few samples costs the node less than sending it costs both sides; a short block is sent whole).
 */
const CUT_MIN_SAMPLES = 1024;
const CUT_RATIO = 8;
const cutter = new BlockCutter();

/** `blocks` with the long ones that lie mostly outside [minT, maxT] cut to it (see CUT_MIN_SAMPLES). */
function cutToRange(blocks: readonly RawBlock[], minT: number, maxT: number): readonly RawBlock[] {
  let out: RawBlock[] | undefined;
  for (let i = 0; i < blocks.length; i++) {
    const b = blocks[i]!;
    const span = b.maxT - b.minT;
    if (b.count < CUT_MIN_SAMPLES || (Math.min(b.maxT, maxT) - Math.max(b.minT, minT)) * CUT_RATIO >= span) continue;
    const c = cutter.cut(b, minT, maxT);
    if (c === b) continue;
    out ??= blocks.slice();
    out[i] = c;
  }
  return out ?? blocks;
}

/** Frame writers of finished Search_v1 calls. */
const writers: SearchFrameWriter[] = [];
const MAX_POOLED_WRITERS = 8;

function takeWriter(): SearchFrameWriter {
  // With room for gRPC's prefix: grpc-js sends the frame from the writer's memory (PreFramedMessage).
  return writers.pop() ?? new SearchFrameWriter(WRITER_BYTES, true);
}

/** A DataView over the frame writer's memory last written to (marshalBlockAt writes a block's integers through it). */
let viewBuf: Uint8Array | undefined;
let view: DataView | undefined;

function viewOf(buf: Uint8Array): DataView {
  if (buf !== viewBuf || view === undefined) {
    viewBuf = buf;
    view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return view;
}

function release(w: SearchFrameWriter): void {
  w.reset();
  if (writers.length < MAX_POOLED_WRITERS) writers.push(w);
}

/** A Search_v1 call or a SearchStream_v1 stream: where a search's frames go. */
interface SearchCall {
  readonly cancelled: boolean;
  write(m: PreFramedMessage, cb: () => void): boolean;
  end(md?: grpc.Metadata): void;
  emit(event: "error", err: Error): boolean;
  on(event: "cancelled", f: () => void): unknown;
  off(event: "cancelled", f: () => void): unknown;
}

/**
 * Runs one search and writes its frames to `call`. Search_v1 (`stream` false) ends the call:
 * with OK (and the trace trailer) or the error's status. SearchStream_v1 leaves the stream open:
 * the search's last frame carries `end` (its status and trace).
 */
async function runSearch(d: StorageServerDeps, call: SearchCall, request: cluster.SearchRequest, stream: boolean): Promise<void> {
  const t0 = performance.now();
  // Frames are built in place in pooled writers, behind room for gRPC's prefix, and
  // grpc-js sends them from there (PreFramedMessage, no copy): a writer goes back to the
  // pool once the HTTP/2 stream has taken its frame (the write's callback).
  let w = takeWriter();
  // Frames given to call.write whose callback has not come (grpc-js calls it once the
  // HTTP/2 stream has written the frame; never after a cancel).
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const wakeUp = (): void => {
    const f = wake;
    wake = undefined;
    f?.();
  };
  call.on("cancelled", wakeUp);
  let st: SearchStats | undefined;
  /** Hands the writer's frame to gRPC (`last`: also one without blocks, for its `end`). */
  const flush = async (last = false): Promise<void> => {
    if (w.blocks === 0 && !last) return;
    const sent = w;
    w = takeWriter();
    if (st && !last) st.bytes += sent.len;
    inFlight++;
    call.write(sent.message(), () => {
      inFlight--;
      release(sent);
      wakeUp();
    });
    if (inFlight < MAX_FRAMES_IN_FLIGHT) return;
    const t = st ? performance.now() : 0;
    while (inFlight >= MAX_FRAMES_IN_FLIGHT && !call.cancelled) await new Promise<void>((resolve) => (wake = resolve));
    if (st) st.sendWaitMs += performance.now() - t;
  };
  try {
    const q = queryOf(request.query);
    const accepted = request.acceptedEncodings;
    const raw = accepted.length === 0 || accepted.includes(cluster.BlockEncoding.STORAGE_V1);
    st = request.trace ? new SearchStats() : undefined;
    // The caller dedups before trimming: it reads one interval past maxT (as this node's
    // own dedup does; the cursor fetches that far). cut_blocks: it reads nothing else.
    const readPastMs = Math.max(0, Number(request.dedupIntervalMs), d.dedupIntervalMs);
    const cutMaxT = request.cutBlocks ? q.maxT + readPastMs : undefined;
    const seen = new Set<number>();
    for (const g of q.groups) {
      // Each series is copied into the frame (or merged) before the next: its block buffers can be reused.
      let t = st ? performance.now() : 0;
      const c = d.storage.search(q.tenant, g, q.minT, q.maxT, { reuseBlockBuffers: true, readPastMs, ...(q.maxSeries > 0 ? { maxSeries: q.maxSeries } : {}) });
      if (st) st.indexMs += performance.now() - t;
      try {
        for (;;) {
          if (st) t = performance.now();
          const more = c.next();
          if (st) st.readMs += performance.now() - t;
          if (!more) break;
          if (call.cancelled) return;
          const s = c.at();
          if (seen.has(s.tsid.metricID)) continue;
          seen.add(s.tsid.metricID);
          if (st) {
            st.series++;
            st.blocks += s.blocks.length;
          }
          if (raw) {
            // Cut blocks are fresh copies: valid across the flush below as the cursor's views are.
            const blocks = cutMaxT === undefined ? s.blocks : cutToRange(s.blocks, c.minT, cutMaxT);
            // A series that would take the frame past FRAME_BYTES starts the next one (its
            // views stay valid while the frame is handed over: the cursor has not moved).
            let size = s.metricName.length;
            for (const b of blocks) size += marshaledBlockSize(b) + BLOCK_FIELDS_BYTES;
            if (w.blocks > 0 && w.len + size > FRAME_BYTES) await flush();
            let name = s.metricName;
            for (const b of blocks) {
              const at = w.appendBlock(name, cluster.BlockEncoding.STORAGE_V1, b.count, b.minT, b.maxT, marshaledBlockSize(b));
              const buf = w.buf;
              marshalBlockAt(b, buf, at, viewOf(buf));
              name = NO_NAME;
            }
          } else {
            const { timestamps, values } = mergeSeriesBlocks(s.blocks, c.minT, c.maxT, d.dedupIntervalMs);
            if (timestamps.length === 0) continue;
            const rows = new RowsBatchWriter(timestamps.length * 16 + s.metricName.length + 8);
            for (let i = 0; i < timestamps.length; i++) rows.add(s.metricName, timestamps[i]!, values[i]!);
            const data = rows.finish();
            const at = w.appendBlock(
              s.metricName,
              cluster.BlockEncoding.ROWS,
              timestamps.length,
              timestamps[0]!,
              timestamps[timestamps.length - 1]!,
              data.length,
            );
            w.buf.set(data, at);
          }
          if (w.len >= FRAME_BYTES) await flush();
        }
      } finally {
        c.close();
      }
    }
    if (stream && st) st.bytes += w.len; // the last frame's blocks: sent with the end
    const trace = st ? st.encode(performance.now() - t0) : "";
    if (stream) {
      w.appendEnd(0, "", trace);
      await flush(true);
    } else {
      await flush();
      if (st) {
        const md = new grpc.Metadata();
        md.set(SEARCH_TRACE_TRAILER, trace);
        call.end(md);
      } else call.end();
    }
  } catch (err) {
    const status = toGrpcError(err);
    if (stream) {
      // The blocks sent before are dropped by the caller: the search failed.
      if (call.cancelled) return;
      w.reset();
      w.appendEnd(status.code ?? grpc.status.INTERNAL, status.details ?? errorMessage(err), "");
      await flush(true);
    } else {
      // grpc-js sends a server stream's status from its 'error' event; destroy() would leave
      // the call open without one, and select would wait for the query deadline.
      call.emit("error", Object.assign(new Error(errorMessage(err)), status));
    }
  } finally {
    call.off("cancelled", wakeUp);
    release(w);
  }
}

/** Handlers of the search port (served to select). */
export function searchHandlers(d: StorageServerDeps): SearchServiceHandlers {
  const unary =
    <Req, Res>(fn: (req: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, cb) => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => cb(null, res),
          (err: unknown) => cb(toGrpcError(err)),
        );
    };
  return {
    Search_v1: (call) => void runSearch(d, call, call.request, false),
    SearchStream_v1: (call) => {
      // One search at a time, in the order the requests came (the caller sends the next one
      // after the previous search's end).
      let queue = Promise.resolve();
      let busy = 0;
      d.searchStreams.add(call, () => busy === 0);
      call.on("data", (req: cluster.SearchRequest) => {
        busy++;
        queue = queue.then(async () => {
          if (d.searchStreams.closed) {
            const w = takeWriter();
            w.appendEnd(grpc.status.UNAVAILABLE, "STRATA_CLOSED: the storage node is shutting down", "");
            call.write(w.message(), () => release(w));
          } else await runSearch(d, call, req, true);
          if (--busy === 0) d.searchStreams.searched(call);
        });
      });
      call.on("end", () => void queue.then(() => call.end()));
      // A cancelled stream: the search in progress stops at its next series.
      call.on("error", () => undefined);
    },
    SearchMetricNames_v1: unary((req: cluster.SearchMetricNamesRequest) => {
      const q = queryOf(req.query);
      const maxSeries = q.maxSeries > 0 ? q.maxSeries : undefined;
      const search = (g: LabelMatcher[]) => d.storage.searchMetricNames(q.tenant, g, q.minT, q.maxT, maxSeries);
      if (q.groups.length === 1) return create(cluster.SearchMetricNamesResponseSchema, { metricNames: search(q.groups[0]!) });
      // A series matched by several groups is listed once.
      const names = new Map<string, Uint8Array>();
      for (const g of q.groups) for (const n of search(g)) names.set(Buffer.from(n.buffer, n.byteOffset, n.byteLength).toString("latin1"), n);
      return create(cluster.SearchMetricNamesResponseSchema, { metricNames: [...names.values()] });
    }),
    LabelNames_v1: unary((req: cluster.LabelNamesRequest) => {
      const q = queryOf(req.query);
      const lists = q.groups.map((g) => d.storage.labelNames(q.tenant, g, q.minT, q.maxT, req.limit));
      return create(cluster.LabelNamesResponseSchema, { names: union(lists, req.limit) });
    }),
    LabelValues_v1: unary((req: cluster.LabelValuesRequest) => {
      const q = queryOf(req.query);
      const lists = q.groups.map((g) =>
        d.storage.labelValues(q.tenant, req.labelName, g, q.minT, q.maxT, req.limit),
      );
      return create(cluster.LabelValuesResponseSchema, { values: union(lists, req.limit) });
    }),
    SeriesCount_v1: unary((req: cluster.SeriesCountRequest) =>
      create(cluster.SeriesCountResponseSchema, { count: BigInt(d.storage.seriesCount(tenantOf(req.tenant))) }),
    ),
    TsdbStatus_v1: unary((req: cluster.TsdbStatusRequest) => {
      const s = d.storage.tsdbStatus(tenantOf(req.tenant), {
        date: req.date,
        topN: req.topN > 0 ? req.topN : 10,
        ...(req.focusLabel !== "" ? { focusLabel: req.focusLabel } : {}),
        ...(req.matchers.length > 0 ? { matchers: matchersOf(req.matchers) } : {}),
      });
      const nv = (l: readonly { name: string; value: number }[]) => l.map((x) => ({ name: x.name, value: BigInt(x.value) }));
      return create(cluster.TsdbStatusResponseSchema, {
        totalSeries: BigInt(s.totalSeries),
        totalLabelValuePairs: BigInt(s.totalLabelValuePairs),
        seriesCountByMetricName: nv(s.seriesCountByMetricName),
        seriesCountByLabelName: nv(s.seriesCountByLabelName),
        seriesCountByFocusLabelValue: nv(s.seriesCountByFocusLabelValue),
        seriesCountByLabelValuePair: nv(s.seriesCountByLabelValuePair),
        labelValueCountByLabelName: nv(s.labelValueCountByLabelName),
      });
    }),
    DeleteSeries_v1: unary(async (req: cluster.DeleteSeriesRequest) => {
      const q = queryOf(req.query);
      let n = 0;
      for (const g of q.groups) n += await d.storage.deleteSeries(q.tenant, g);
      return create(cluster.DeleteSeriesResponseSchema, { deleted: BigInt(n) });
    }),
    Metadata_v1: unary((req: cluster.MetadataRequest) => {
      const t = tenantOf(req.tenant);
      return create(cluster.MetadataResponseSchema, {
        metadata: d.metadata.get(t, req.metric, req.limit).map((e) => ({
          tenant: { accountId: t.accountID, projectId: t.projectID },
          metricFamilyName: e.family,
          type: e.type,
          help: e.help,
          unit: e.unit,
        })),
      });
    }),
    Ping_v1: (_call, cb) => cb(null, create(cluster.PingResponseSchema, { nodeId: d.nodeId, ready: d.isReady() })),
    WatchIndex_v1: (call) => d.watch.add(call),
  };
}
