import type { Trace } from "@strata/core";
import type { grpc } from "@strata/protocol";

/**
 * Storage-side timings of a search for `trace=1`: select sets `trace` in the request, the node
 * measures its steps and sends them (JSON of SearchTrace) in the search's `end` on
 * SearchStream_v1, or as the trailer SEARCH_TRACE_TRAILER with a Search_v1 call's OK status;
 * select hangs them under the node's step, as VictoriaMetrics' trace shows each vmstorage node.
 */

/** Trailer of a traced Search_v1 call: the node's timings (docs/format/cluster-rpc.md). */
export const SEARCH_TRACE_TRAILER = "strata-search-trace";

/** What a traced Search_v1 call measured on the node; sent as JSON in SEARCH_TRACE_TRAILER. */
export interface SearchTrace {
  /** Whole call on the node, from the request to the last frame handed to gRPC. */
  readonly totalMs: number;
  /** Index search: matchers → TSIDs (the per-day index), and the parts to read. */
  readonly indexMs: number;
  /** Reading (and for ROWS, merging) the series' blocks from the parts. */
  readonly readMs: number;
  /** Waiting for the transport to drain (the client reads slower than the node sends). */
  readonly sendWaitMs: number;
  readonly series: number;
  readonly blocks: number;
  /** Bytes of the frames sent. */
  readonly bytes: number;
}

export class SearchStats {
  indexMs = 0;
  readMs = 0;
  sendWaitMs = 0;
  series = 0;
  blocks = 0;
  bytes = 0;

  encode(totalMs: number): string {
    // Parts rounded down and the total up, so that the parts never add up to more than the whole.
    const r = (ms: number) => Math.floor(ms * 1000) / 1000;
    const out: SearchTrace = {
      totalMs: Math.ceil(totalMs * 1000) / 1000,
      indexMs: r(this.indexMs),
      readMs: r(this.readMs),
      sendWaitMs: r(this.sendWaitMs),
      series: this.series,
      blocks: this.blocks,
      bytes: this.bytes,
    };
    return JSON.stringify(out);
  }
}

/** The node's SEARCH_TRACE_TRAILER (undefined when absent or not understood: an older node). */
export function parseSearchTrace(v: grpc.MetadataValue | undefined): SearchTrace | undefined {
  if (typeof v !== "string") return undefined;
  try {
    const t = JSON.parse(v) as Partial<SearchTrace>;
    return typeof t.totalMs === "number" && typeof t.indexMs === "number" && typeof t.readMs === "number" ? (t as SearchTrace) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The storage node's own steps of a Search_v1 call, under the node's step of select's trace; its
 * duration is the node's measure (the rest of the node's step is transfer and receiving).
 */
export function traceRemote(t: Trace, r: SearchTrace): void {
  const node = t.addDone(`on the storage node: ${r.series} series, ${r.blocks} blocks, ${r.bytes} bytes sent`, r.totalMs);
  node.addDone("index search (matchers → series)", r.indexMs);
  node.addDone(`read ${r.blocks} blocks of ${r.series} series`, r.readMs);
  node.addDone("encode frames", Math.max(0, r.totalMs - r.indexMs - r.readMs - r.sendWaitMs));
  node.addDone("wait for the transport to drain (select reads slower than the node sends)", r.sendWaitMs);
}
