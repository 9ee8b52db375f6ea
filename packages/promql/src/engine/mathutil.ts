/** Sorts ascending with NaNs first, as Prometheus' vectorByValueHeap orders them. */
export function sortFloatsNaNFirst(a: Float64Array): void {
  // Float64Array.prototype.sort puts NaN last; move them to the front afterwards.
  a.sort();
  let nan = 0;
  for (let i = a.length - 1; i >= 0 && Number.isNaN(a[i]!); i--) nan++;
  if (nan === 0) return;
  a.copyWithin(nan, 0, a.length - nan);
  a.fill(NaN, 0, nan);
}

/** Prometheus' quantile over values (sorted in place). */
export function quantile(q: number, values: Float64Array): number {
  const n = values.length;
  if (n === 0 || Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  sortFloatsNaNFirst(values);
  const rank = q * (n - 1);
  const lower = Math.max(0, Math.floor(rank));
  const upper = Math.min(n - 1, lower + 1);
  const weight = rank - Math.floor(rank);
  return values[lower]! * (1 - weight) + values[upper]! * weight;
}

/** Go's math.Pow special cases where they differ from `**`. */
export function goPow(x: number, y: number): number {
  if (y === 0) return 1;
  if (x === 1) return 1;
  if ((x === -1) && (y === Infinity || y === -Infinity)) return 1;
  return x ** y;
}

/** Go's math.Mod (same as `%` for IEEE doubles). */
export function goMod(x: number, y: number): number {
  return x % y;
}

const DEC = /^[+-]?(?:\d+(?:_\d+)*\.?(?:\d+(?:_\d+)*)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+)?$/;

/** Go's strconv.ParseFloat(s, 64); undefined on a syntax error. */
export function parseGoFloat(s: string): number | undefined {
  if (s === "") return undefined;
  const low = s.toLowerCase();
  const sign = low.startsWith("-") ? -1 : 1;
  const body = low.startsWith("+") || low.startsWith("-") ? low.slice(1) : low;
  if (body === "inf" || body === "infinity") return sign * Infinity;
  if (body === "nan") return low === "nan" ? NaN : undefined;
  if (body.startsWith("0x")) {
    const m = /^0x([0-9a-f_]*)(?:\.([0-9a-f_]*))?(?:p([+-]?\d+))?$/.exec(body);
    if (!m || (m[1] === "" && (m[2] ?? "") === "")) return undefined;
    const intPart = (m[1] ?? "").replace(/_/g, "");
    const frac = (m[2] ?? "").replace(/_/g, "");
    let v = intPart === "" ? 0 : parseInt(intPart, 16);
    for (let i = 0; i < frac.length; i++) v += parseInt(frac[i]!, 16) / 16 ** (i + 1);
    const e = m[3] !== undefined ? Number(m[3]) : 0;
    if (m[3] === undefined && frac !== "") return undefined;
    return sign * v * 2 ** e;
  }
  if (!DEC.test(s) || s.includes("_")) return undefined;
  return Number(s);
}
