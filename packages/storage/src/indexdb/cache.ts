/**
 * A two-generation cache bounded by (estimated) bytes, like VictoriaMetrics' workingsetcache:
 * entries go to `curr`; when it holds half the cap, it becomes `prev` and the old `prev` is
 * dropped. A hit in `prev` moves the entry back to `curr`. O(1), no per-access bookkeeping.
 */
export class TwoGenCache<K, V> {
  private curr = new Map<K, V>();
  private prev = new Map<K, V>();
  private currBytes = 0;
  private prevBytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    readonly capBytes: number,
    private readonly sizeOf: (k: K, v: V) => number,
  ) {}

  get(k: K): V | undefined {
    const v = this.curr.get(k);
    if (v !== undefined) {
      this.hits++;
      return v;
    }
    const p = this.prev.get(k);
    if (p !== undefined) {
      this.hits++;
      this.prev.delete(k);
      this.prevBytes -= this.sizeOf(k, p);
      this.set(k, p);
      return p;
    }
    this.misses++;
    return undefined;
  }

  set(k: K, v: V): void {
    const size = this.sizeOf(k, v);
    if (size * 2 > this.capBytes) return;
    if (this.currBytes + size > this.capBytes / 2) {
      this.prev = this.curr;
      this.prevBytes = this.currBytes;
      this.curr = new Map();
      this.currBytes = 0;
    }
    const old = this.curr.get(k);
    if (old !== undefined) this.currBytes -= this.sizeOf(k, old);
    this.curr.set(k, v);
    this.currBytes += size;
  }

  /** Every entry (older generation first, so re-inserting them keeps the newer ones). */
  *all(): IterableIterator<[K, V]> {
    yield* this.prev;
    yield* this.curr;
  }

  clear(): void {
    this.curr = new Map();
    this.prev = new Map();
    this.currBytes = 0;
    this.prevBytes = 0;
  }

  get bytes(): number {
    return this.currBytes + this.prevBytes;
  }

  get entries(): number {
    return this.curr.size + this.prev.size;
  }
}
