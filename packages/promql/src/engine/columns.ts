/** Doubles (and bytes) per chunk: 64 KiB of doubles. */
const CHUNK = 8192;
/** Columns longer than this get arrays of their own. */
const MAX_CUT = CHUNK / 8;
/** Columns this short live in V8's heap anyway (typed arrays of ≤ 64 bytes have no backing store of their own). */
const MIN_CUT = 8;

/**
 * Per-step columns (a series' values and presence) cut from shared chunks. A typed array of a few
 * hundred steps has a backing store of its own, allocated and freed outside V8's heap and swept
 * by the GC one by one; a wide query made thousands per node. A cut column is a view of a chunk
 * that lives as long as any of its columns: hand out columns only to values of one query.
 * Columns are zeroed.
 */
export class Columns {
  private f = new Float64Array(0);
  private fUsed = 0;
  private u = new Uint8Array(0);
  private uUsed = 0;

  values(n: number): Float64Array {
    if (n <= MIN_CUT || n > MAX_CUT) return new Float64Array(n);
    if (this.fUsed + n > this.f.length) {
      this.f = new Float64Array(CHUNK);
      this.fUsed = 0;
    }
    const a = this.f.subarray(this.fUsed, this.fUsed + n);
    this.fUsed += n;
    return a;
  }

  present(n: number): Uint8Array {
    if (n <= MIN_CUT * 8 || n > MAX_CUT) return new Uint8Array(n);
    if (this.uUsed + n > this.u.length) {
      this.u = new Uint8Array(CHUNK);
      this.uUsed = 0;
    }
    const a = this.u.subarray(this.uUsed, this.uUsed + n);
    this.uUsed += n;
    return a;
  }
}
