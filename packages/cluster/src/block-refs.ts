/**
 * The blocks of a search as positions in the frames they arrived in: one row of four int32s per
 * block (frame, start, end, next block of the same series), no object per block. A wide search
 * (35,000 series of one block each) held a Uint8Array view per block and an array per series
 * until its query ended, and the young generation copied every one of them twice; rows in one
 * typed array cost the collector nothing. A series is the chain of its blocks from its first row
 * (`next` is -1 after the last): appending a node's blocks to a series another node sent first
 * links the chains, so a series spread over nodes needs no list either.
 */
const NO_FRAME = new Uint8Array(0);

export class BlockRefs {
  /** The frames the rows point into (an empty one once `release` let go of all its blocks). */
  readonly frames: Uint8Array[] = [];
  /** Blocks of each frame not released yet. */
  private readonly live: number[] = [];
  private rows = new Int32Array(4 * 1024);
  private count = 0;

  /** Adds a frame; returns its index for `add`. */
  addFrame(frame: Uint8Array): number {
    this.frames.push(frame);
    this.live.push(0);
    return this.frames.length - 1;
  }

  /** Adds block [start, end) of frame `frame` as the last of its chain; returns its row. */
  add(frame: number, start: number, end: number): number {
    const r = this.count++;
    if (4 * this.count > this.rows.length) {
      const grown = new Int32Array(2 * this.rows.length);
      grown.set(this.rows);
      this.rows = grown;
    }
    const o = 4 * r;
    const rows = this.rows;
    rows[o] = frame;
    rows[o + 1] = start;
    rows[o + 2] = end;
    rows[o + 3] = -1;
    this.live[frame]!++;
    return r;
  }

  /**
   * Lets go of the chain's blocks (their series is packed or decoded): a frame none of whose
   * blocks is wanted any more is dropped, so the compressed data shrinks as a query goes.
   */
  release(first: number): void {
    const rows = this.rows;
    for (let r = first; r >= 0; r = rows[4 * r + 3]!) {
      const f = rows[4 * r]!;
      if (--this.live[f]! === 0) this.frames[f] = NO_FRAME;
    }
  }

  /** Drops every frame (the query is over). */
  clear(): void {
    this.frames.fill(NO_FRAME);
  }

  /** Makes `first` follow `last` in a chain (`last` ended it). */
  link(last: number, first: number): void {
    this.rows[4 * last + 3] = first;
  }

  /** The row after `row` in its chain, or -1. */
  next(row: number): number {
    return this.rows[4 * row + 3]!;
  }

  /** Bytes of the blocks counted by the last chainBlocks. */
  chainBytes = 0;

  /** Blocks in the chain from `first` (-1: none); their bytes are then in `chainBytes`. */
  chainBlocks(first: number): number {
    let blocks = 0;
    let bytes = 0;
    const rows = this.rows;
    for (let r = first; r >= 0; r = rows[4 * r + 3]!) {
      blocks++;
      bytes += rows[4 * r + 2]! - rows[4 * r + 1]!;
    }
    this.chainBytes = bytes;
    return blocks;
  }

  /** Copies the chain's blocks' bytes one after the other into `out` at `at`; returns the offset after them. */
  copyChain(first: number, out: Uint8Array, at: number): number {
    const rows = this.rows;
    const frames = this.frames;
    for (let r = first; r >= 0; r = rows[4 * r + 3]!) {
      const o = 4 * r;
      const start = rows[o + 1]!;
      const end = rows[o + 2]!;
      const f = frames[rows[o]!]!;
      // Short blocks byte by byte: a subarray and a native call cost more than the copy.
      if (end - start <= 64) for (let i = start; i < end; i++) out[at++] = f[i]!;
      else {
        out.set(f.subarray(start, end), at);
        at += end - start;
      }
    }
    return at;
  }

  /** The chain's blocks as views into their frames (the inline decoders' input). */
  views(first: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const rows = this.rows;
    for (let r = first; r >= 0; r = rows[4 * r + 3]!) out.push(this.frames[rows[4 * r]!]!.subarray(rows[4 * r + 1]!, rows[4 * r + 2]!));
    return out;
  }

  /** Refs of series given as their blocks' wire forms (tests, benchmarks): each series' first row. */
  static ofWire(series: readonly (readonly Uint8Array[])[]): { refs: BlockRefs; firsts: Int32Array } {
    const refs = new BlockRefs();
    const firsts = new Int32Array(series.length).fill(-1);
    series.forEach((blocks, i) => {
      let last = -1;
      for (const w of blocks) {
        const r = refs.add(refs.addFrame(w), 0, w.length);
        if (last < 0) firsts[i] = r;
        else refs.link(last, r);
        last = r;
      }
    });
    return { refs, firsts };
  }
}
