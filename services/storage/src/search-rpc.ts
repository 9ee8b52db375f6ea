import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { BadDataError, ExecutionError, newMatcher, StrataError, type LabelMatcher, type Logger, type MetricsRegistry, type Tenant } from "@strata/core";
import { cluster, type SearchServiceHandlers } from "@strata/protocol";
import { ByteBuffer, marshalBlock, type Storage } from "@strata/storage";

/**
 * The storage node's search port (-vmselectAddr, :8401): Search_v1 streams every matching
 * series' blocks exactly as stored (select decodes and merges them), plus the label, count,
 * cardinality, metadata and delete RPCs. Matchers arrive as proto and are compiled here, so an
 * invalid regex is INVALID_ARGUMENT; a series limit is RESOURCE_EXHAUSTED; everything else is
 * INTERNAL. Every call honours the caller's deadline and cancellation.
 */

export interface MetadataSource {
  list(tenant: Tenant, metric: string, limit: number): cluster.MetricMetadata[];
}

const MATCH: Record<cluster.LabelMatcher_Type, LabelMatcher["type"]> = {
  [cluster.LabelMatcher_Type.EQ]: "=",
  [cluster.LabelMatcher_Type.NEQ]: "!=",
  [cluster.LabelMatcher_Type.RE]: "=~",
  [cluster.LabelMatcher_Type.NRE]: "!~",
};

/** Most bytes of blocks per streamed message. */
const FRAME_BYTES = 1 << 20;

function toMatchers(ms: readonly cluster.LabelMatcher[]): LabelMatcher[] {
  return ms.map((m) => {
    const t = MATCH[m.type];
    if (t === undefined) throw new BadDataError(`unknown matcher type ${m.type} for label ${JSON.stringify(m.name)}`);
    return newMatcher(t, m.name, m.value);
  });
}

function tenantOf(t: cluster.Tenant | undefined): Tenant {
  return { accountID: t?.accountId ?? 0, projectID: t?.projectId ?? 0 };
}

interface Query {
  readonly tenant: Tenant;
  readonly sets: LabelMatcher[][];
  readonly minT: number;
  readonly maxT: number;
  readonly maxSeries: number;
}

function parseQuery(q: cluster.SearchQuery | undefined, defaultMaxSeries: number): Query {
  if (!q) throw new BadDataError("search request without a query");
  const sets = q.matcherGroups.map((g) => toMatchers(g.matchers));
  return {
    tenant: tenantOf(q.tenant),
    // No group means "every series" ({__name__=~".+"} is the same, but cheaper to say nothing).
    sets: sets.length === 0 ? [[]] : sets,
    minT: Number(q.minTimestampMs),
    maxT: Number(q.maxTimestampMs),
    maxSeries: q.maxSeries > 0 ? Math.min(q.maxSeries, defaultMaxSeries) : defaultMaxSeries,
  };
}

function grpcError(err: unknown): Partial<grpc.StatusObject> {
  const details = err instanceof Error ? err.message : String(err);
  let code = grpc.status.INTERNAL;
  if (err instanceof BadDataError) code = grpc.status.INVALID_ARGUMENT;
  else if (err instanceof ExecutionError && err.code === "STRATA_LIMIT_EXCEEDED") code = grpc.status.RESOURCE_EXHAUSTED;
  else if (err instanceof StrataError && err.type === "unavailable") code = grpc.status.UNAVAILABLE;
  return { code, details };
}

function unary<Req, Res>(log: Logger, name: string, fn: (req: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then(
        (res) => callback(null, res),
        (err: unknown) => {
          if (!(err instanceof BadDataError)) log.warn({ rpc: name, err: err instanceof Error ? err.message : String(err) }, "search RPC failed");
          callback(grpcError(err), null);
        },
      );
  };
}

export function createSearchHandlers(storage: Storage, metadata: MetadataSource, log: Logger, metrics: MetricsRegistry, maxSeries = 1_000_000): SearchServiceHandlers {
  const searches = metrics.counter("strata_storage_search_requests_total", "Search_v1 requests served.");
  const blocksSent = metrics.counter("strata_storage_search_blocks_sent_total", "Blocks streamed to select nodes.");
  const seriesSent = metrics.counter("strata_storage_search_series_sent_total", "Series streamed to select nodes.");

  const Search_v1: grpc.handleServerStreamingCall<cluster.SearchRequest, cluster.SearchResponse> = (call) => {
    searches.inc();
    void (async () => {
      try {
        const q = parseQuery(call.request.query, maxSeries);
        if (call.request.acceptedEncodings.length > 0 && !call.request.acceptedEncodings.includes(cluster.BlockEncoding.STORAGE_V1)) {
          throw new BadDataError("the caller accepts no block encoding this node writes (BLOCK_ENCODING_STORAGE_V1)");
        }
        const buf = new ByteBuffer(64 * 1024);
        let frame: cluster.SeriesBlock[] = [];
        let frameBytes = 0;
        const flush = async () => {
          if (frame.length === 0) return;
          const ok = call.write(create(cluster.SearchResponseSchema, { blocks: frame }));
          frame = [];
          frameBytes = 0;
          if (!ok) await new Promise<void>((r) => call.once("drain", () => r()));
        };
        // A series matched by several groups is sent once.
        const seen = q.sets.length > 1 ? new Set<string>() : undefined;
        let total = 0;
        for (const matchers of q.sets) {
          const cursor = storage.search(q.tenant, matchers, q.minT, q.maxT, { maxSeries: q.maxSeries });
          try {
            while (cursor.next()) {
              if (call.cancelled) return;
              const s = cursor.at();
              if (seen) {
                const key = Buffer.from(s.metricName).toString("latin1");
                if (seen.has(key)) continue;
                seen.add(key);
              }
              if (++total > q.maxSeries) {
                throw new ExecutionError(`the search matches more than ${q.maxSeries} series`, "STRATA_LIMIT_EXCEEDED");
              }
              seriesSent.inc();
              let first = true;
              for (const b of s.blocks) {
                buf.len = 0;
                marshalBlock(b, buf);
                const data = buf.buf.slice(0, buf.len);
                frame.push(
                  create(cluster.SeriesBlockSchema, {
                    metricName: first ? s.metricName : new Uint8Array(0),
                    encoding: cluster.BlockEncoding.STORAGE_V1,
                    data,
                    rowsCount: b.count,
                    minTimestampMs: BigInt(b.minT),
                    maxTimestampMs: BigInt(b.maxT),
                  }),
                );
                frameBytes += data.length + (first ? s.metricName.length : 0);
                first = false;
                blocksSent.inc();
                if (frameBytes >= FRAME_BYTES) await flush();
              }
            }
          } finally {
            cursor.close();
          }
        }
        await flush();
        call.end();
      } catch (err) {
        if (!(err instanceof BadDataError)) log.warn({ rpc: "Search_v1", err: err instanceof Error ? err.message : String(err) }, "search failed");
        call.destroy(Object.assign(new Error(err instanceof Error ? err.message : String(err)), grpcError(err)));
      }
    })();
  };

  const union = (lists: string[][], limit: number): string[] => {
    const set = new Set<string>();
    for (const l of lists) for (const v of l) set.add(v);
    const out = [...set].sort();
    return limit > 0 ? out.slice(0, limit) : out;
  };

  return {
    Search_v1,
    LabelNames_v1: unary(log, "LabelNames_v1", (req: cluster.LabelNamesRequest) => {
      const q = parseQuery(req.query, maxSeries);
      const limit = req.limit > 0 ? req.limit : 100_000;
      const names = union(q.sets.map((m) => storage.labelNames(q.tenant, m, q.minT, q.maxT, limit)), limit);
      return create(cluster.LabelNamesResponseSchema, { names });
    }),
    LabelValues_v1: unary(log, "LabelValues_v1", (req: cluster.LabelValuesRequest) => {
      const q = parseQuery(req.query, maxSeries);
      const limit = req.limit > 0 ? req.limit : 100_000;
      const values = union(q.sets.map((m) => storage.labelValues(q.tenant, req.labelName, m, q.minT, q.maxT, limit)), limit);
      return create(cluster.LabelValuesResponseSchema, { values });
    }),
    SeriesCount_v1: unary(log, "SeriesCount_v1", (req: cluster.SeriesCountRequest) =>
      create(cluster.SeriesCountResponseSchema, { count: BigInt(storage.seriesCount(tenantOf(req.tenant))) }),
    ),
    TsdbStatus_v1: unary(log, "TsdbStatus_v1", (req: cluster.TsdbStatusRequest) => {
      const st = storage.tsdbStatus(tenantOf(req.tenant), {
        date: req.date,
        topN: req.topN > 0 ? req.topN : 10,
        ...(req.focusLabel !== "" ? { focusLabel: req.focusLabel } : {}),
        matchers: toMatchers(req.matchers),
      });
      const nv = (l: readonly { name: string; value: number }[]) => l.map((x) => create(cluster.NameValueSchema, { name: x.name, value: BigInt(x.value) }));
      return create(cluster.TsdbStatusResponseSchema, {
        totalSeries: BigInt(st.totalSeries),
        totalLabelValuePairs: BigInt(st.totalLabelValuePairs),
        seriesCountByMetricName: nv(st.seriesCountByMetricName),
        seriesCountByLabelName: nv(st.seriesCountByLabelName),
        seriesCountByFocusLabelValue: nv(st.seriesCountByFocusLabelValue),
        seriesCountByLabelValuePair: nv(st.seriesCountByLabelValuePair),
        labelValueCountByLabelName: nv(st.labelValueCountByLabelName),
      });
    }),
    DeleteSeries_v1: unary(log, "DeleteSeries_v1", async (req: cluster.DeleteSeriesRequest) => {
      const q = parseQuery(req.query, maxSeries);
      let deleted = 0;
      for (const m of q.sets) {
        if (m.length === 0) throw new BadDataError("delete_series needs at least one matcher");
        deleted += await storage.deleteSeries(q.tenant, m);
      }
      log.info({ tenant: q.tenant, deleted }, "deleted series");
      return create(cluster.DeleteSeriesResponseSchema, { deleted: BigInt(deleted) });
    }),
    Metadata_v1: unary(log, "Metadata_v1", (req: cluster.MetadataRequest) =>
      create(cluster.MetadataResponseSchema, { metadata: metadata.list(tenantOf(req.tenant), req.metric, req.limit) }),
    ),
    Ping_v1: unary(log, "Ping_v1", () => create(cluster.PingResponseSchema, { nodeId: "", ready: true })),
  };
}
