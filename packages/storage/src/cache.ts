/**
 * A bounded two-generation cache (like VictoriaMetrics' workingsetcache): entries live in
 * `current`; when its size passes half the cap it becomes `previous` and a new `current` starts.
 * A hit in `previous` is promoted. Memory stays under `maxBytes` (estimated by the caller).
 */
export class BoundedCache<V> {
  private current = new Map<string | number, V>();
  private previous = new Map<string | number, V>();
  private currentBytes = 0;
  private previousBytes = 0;
  hits = 0;
  misses = 0;

  constructor(
    readonly maxBytes: number,
    private readonly sizeOf: (v: V) => number,
  ) {}

  get(key: string | number): V | undefined {
    let v = this.current.get(key);
    if (v !== undefined) {
      this.hits++;
      return v;
    }
    v = this.previous.get(key);
    if (v !== undefined) {
      this.hits++;
      this.previous.delete(key);
      this.previousBytes -= this.sizeOf(v);
      this.set(key, v);
      return v;
    }
    this.misses++;
    return undefined;
  }

  set(key: string | number, v: V): void {
    const size = this.sizeOf(v);
    if (this.currentBytes + size > this.maxBytes / 2) {
      this.previous = this.current;
      this.previousBytes = this.currentBytes;
      this.current = new Map();
      this.currentBytes = 0;
    }
    const old = this.current.get(key);
    if (old !== undefined) this.currentBytes -= this.sizeOf(old);
    this.current.set(key, v);
    this.currentBytes += size;
  }

  /** Forgets key (in either generation). */
  delete(key: string | number): void {
    const c = this.current.get(key);
    if (c !== undefined) {
      this.current.delete(key);
      this.currentBytes -= this.sizeOf(c);
    }
    const p = this.previous.get(key);
    if (p !== undefined) {
      this.previous.delete(key);
      this.previousBytes -= this.sizeOf(p);
    }
  }

  clear(): void {
    this.current.clear();
    this.previous.clear();
    this.currentBytes = 0;
    this.previousBytes = 0;
  }

  get sizeBytes(): number {
    return this.currentBytes + this.previousBytes;
  }

  get entries(): number {
    return this.current.size + this.previous.size;
  }
}
