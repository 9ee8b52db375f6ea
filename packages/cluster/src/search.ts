import { ExecutionError, UnavailableError, type Logger } from "@strata/core";
import {
  cluster,
  createSearchClient,
  type RpcRequest,
  type RpcResponse,
  type SearchClient,
  type SearchServiceDefinition,
} from "@strata/protocol";

/**
 * Search fan-out from select to every storage node's search port (-storageNode of select,
 * :8401). This is the contract select builds on; the merge of series across nodes (replica
 * de-duplication, dedup interval) belongs to select and is not here.
 *
 * Partial answers: when some nodes fail, the answer is built from the others and marked
 * partial — unless fewer than replicationFactor nodes failed, in which case every series still
 * has a copy on an answering node and the answer is complete. With denyPartialResponse a
 * partial answer is an error instead.
 */

export interface SearchFanoutOptions {
  readonly nodes: readonly string[];
  readonly replicationFactor: number;
  readonly denyPartialResponse?: boolean;
  readonly logger?: Logger;
}

export interface NodeError {
  readonly node: string;
  readonly error: Error;
}

export interface FanoutResult<T> {
  /** One entry per answering node, in node order. */
  readonly results: readonly { readonly node: string; readonly value: T }[];
  readonly isPartial: boolean;
  readonly errors: readonly NodeError[];
}

type Defs = typeof SearchServiceDefinition;
type UnaryName = Exclude<keyof Defs & string, "Search_v1">;
type Req<K extends keyof Defs> = RpcRequest<Defs, K>;
type Res<K extends keyof Defs> = RpcResponse<Defs, K>;

/** Receives the blocks of Search_v1 from one node; called in arrival order per node. */
export type BlockSink = (nodeIndex: number, block: cluster.SeriesBlock) => void;

export class SearchFanout {
  readonly clients: readonly SearchClient[];

  constructor(private readonly opts: SearchFanoutOptions) {
    this.clients = opts.nodes.map((a) => createSearchClient(a));
  }

  /** Calls a unary search-side RPC on every node. */
  async unary<K extends UnaryName>(name: K, req: Req<K>, opts: { deadline?: number; signal?: AbortSignal } = {}): Promise<FanoutResult<Res<K>>> {
    const settled = await Promise.allSettled(this.clients.map((c) => c.unary(name, req, opts)));
    const results: { node: string; value: Res<K> }[] = [];
    const errors: NodeError[] = [];
    settled.forEach((s, i) => {
      const node = this.opts.nodes[i]!;
      if (s.status === "fulfilled") results.push({ node, value: s.value as Res<K> });
      else errors.push({ node, error: s.reason instanceof Error ? s.reason : new Error(String(s.reason)) });
    });
    return this.finish(results, errors);
  }

  /** Streams Search_v1 from every node into `sink`; resolves when every stream has ended or failed. */
  async search(req: cluster.SearchRequest, sink: BlockSink, opts: { deadline?: number; signal?: AbortSignal } = {}): Promise<FanoutResult<number>> {
    const settled = await Promise.allSettled(
      this.clients.map(async (c, i) => {
        let blocks = 0;
        for await (const frame of c.stream("Search_v1", req, opts)) {
          for (const b of (frame as cluster.SearchResponse).blocks) {
            sink(i, b);
            blocks++;
          }
        }
        return blocks;
      }),
    );
    const results: { node: string; value: number }[] = [];
    const errors: NodeError[] = [];
    settled.forEach((s, i) => {
      const node = this.opts.nodes[i]!;
      if (s.status === "fulfilled") results.push({ node, value: s.value });
      else errors.push({ node, error: s.reason instanceof Error ? s.reason : new Error(String(s.reason)) });
    });
    return this.finish(results, errors);
  }

  private finish<T>(results: { node: string; value: T }[], errors: NodeError[]): FanoutResult<T> {
    if (results.length === 0 && errors.length > 0) {
      throw new UnavailableError(`no storage node answered: ${errors.map((e) => `${e.node}: ${e.error.message}`).join("; ")}`);
    }
    const isPartial = errors.length >= this.opts.replicationFactor;
    if (isPartial && this.opts.denyPartialResponse) {
      throw new ExecutionError(
        `partial response denied (-search.denyPartialResponse): ${errors.map((e) => `${e.node}: ${e.error.message}`).join("; ")}`,
      );
    }
    for (const e of errors) this.opts.logger?.warn({ node: e.node, err: e.error.message }, "storage node search failed");
    return { results, isPartial, errors };
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
