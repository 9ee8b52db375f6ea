/** Elements per chunk: 64 KiB of doubles. */
const CHUNK = 8192;
/** Columns longer than this get arrays of their own. */
const MAX_CUT = CHUNK / 8;

/** Typed arrays of one kind cut from shared chunks (see Columns). */
class Cutter<A extends Float64Array | Uint8Array> {
  private chunk: A;
  private used = 0;
  constructor(
    private readonly make: (n: number) => A,
    /** Arrays this short live in V8's heap anyway (typed arrays of ≤ 64 bytes have no backing store of their own). */
    private readonly minCut: number,
  ) {
    this.chunk = make(0);
  }

  cut(n: number): A {
    if (n <= this.minCut || n > MAX_CUT) return this.make(n);
    if (this.used + n > this.chunk.length) {
      this.chunk = this.make(CHUNK);
      this.used = 0;
    }
    const a = this.chunk.subarray(this.used, this.used + n) as A;
    this.used += n;
    return a;
  }
}

/**
 * Per-step columns (a series' values and presence) cut from shared chunks. A typed array of a few
 * hundred steps has a backing store of its own, allocated and freed outside V8's heap and swept
 * by the GC one by one; a wide query made thousands per node. A cut column is a view of a chunk
 * that lives as long as any of its columns: hand out columns only to values of one query.
 * Columns are zeroed.
 */
export class Columns {
  private readonly f = new Cutter((n) => new Float64Array(n), 8);
  private readonly u = new Cutter((n) => new Uint8Array(n), 64);

  values(n: number): Float64Array {
    return this.f.cut(n);
  }

  present(n: number): Uint8Array {
    return this.u.cut(n);
  }
}
