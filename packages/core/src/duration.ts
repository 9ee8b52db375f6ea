import { BadDataError } from "./errors.js";

/** Milliseconds in a day (UTC days: partitions, per-day index entries, retention). */
export const DAY_MS = 86_400_000;

/** Milliseconds per unit, as Prometheus and VictoriaMetrics define them (y = 365d, w = 7d). */
const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: DAY_MS,
  w: 604_800_000,
  y: 31_536_000_000,
};

const DURATION_PART = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d|w|y)/;

function durationError(s: string, why: string): BadDataError {
  return new BadDataError(`cannot parse duration ${JSON.stringify(s)}: ${why}`, "STRATA_INVALID_DURATION");
}

/**
 * Parses a duration into milliseconds. Accepts the Prometheus forms (`5m`, `1h30m`, `100ms`,
 * `2w`, `1y`), VictoriaMetrics' fractional forms (`1.5h`), a bare number of seconds (`1.5`,
 * `30`), and a leading sign (`-5m`). Rejects empty input, unknown units and repeated or
 * out-of-order units (as Prometheus does: `1m1h` is invalid).
 */
export function parseDuration(s: string): number {
  const input = s.trim();
  if (input === "") throw durationError(s, "empty string");
  let rest = input;
  let sign = 1;
  if (rest[0] === "-" || rest[0] === "+") {
    sign = rest[0] === "-" ? -1 : 1;
    rest = rest.slice(1);
    if (rest === "") throw durationError(s, "a sign without a number");
  }
  if (/^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(rest)) {
    const secs = Number(rest);
    if (!Number.isFinite(secs)) throw durationError(s, "out of range");
    return sign * Math.round(secs * 1000);
  }
  let total = 0;
  let lastUnitMs = Infinity;
  let matchedAny = false;
  while (rest.length > 0) {
    const m = DURATION_PART.exec(rest);
    if (!m) {
      throw durationError(s, matchedAny ? `unexpected ${JSON.stringify(rest)}` : "want a number with a unit (ms, s, m, h, d, w, y)");
    }
    const unitMs = UNIT_MS[m[2]!]!;
    if (unitMs >= lastUnitMs) throw durationError(s, `unit ${m[2]} repeated or out of order`);
    lastUnitMs = unitMs;
    total += Number(m[1]) * unitMs;
    rest = rest.slice(m[0].length);
    matchedAny = true;
  }
  if (!Number.isFinite(total) || total > Number.MAX_SAFE_INTEGER) throw durationError(s, "out of range");
  return sign * Math.round(total);
}

/** Formats milliseconds the way Prometheus prints durations (`1h30m`, `5m`, `1d`, `100ms`, `0s`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = Math.abs(ms);
  let out = ms < 0 ? "-" : "";
  for (const [unit, size] of [
    ["y", UNIT_MS.y!],
    ["w", UNIT_MS.w!],
    ["d", UNIT_MS.d!],
    ["h", UNIT_MS.h!],
    ["m", UNIT_MS.m!],
    ["s", UNIT_MS.s!],
    ["ms", 1],
  ] as const) {
    if (rest >= size) {
      const n = Math.floor(rest / size);
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}

function timestampError(s: string, why: string): BadDataError {
  return new BadDataError(`cannot parse timestamp ${JSON.stringify(s)}: ${why}`, "STRATA_INVALID_TIMESTAMP");
}

// 2006-01-02[T15:04[:05[.999999999]]][Z|±07:00]; VictoriaMetrics also accepts the shorter
// prefixes 2006, 2006-01, 2006-01-02, 2006-01-02T15.
const RFC3339ISH =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?)?)?(Z|[+-]\d{2}:\d{2})?$/;

function parseRfc3339(s: string): number | undefined {
  const m = RFC3339ISH.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, sec, frac, zone] = m;
  const year = Number(y);
  const month = mo === undefined ? 1 : Number(mo);
  const day = d === undefined ? 1 : Number(d);
  const hour = h === undefined ? 0 : Number(h);
  const minute = mi === undefined ? 0 : Number(mi);
  const second = sec === undefined ? 0 : Number(sec);
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  let ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (new Date(ms).getUTCDate() !== day) return undefined; // e.g. Feb 30
  if (frac !== undefined) ms += Number(`0.${frac}`) * 1000;
  if (zone !== undefined && zone !== "Z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const offMin = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6));
    ms -= sign * offMin * 60_000;
  }
  return ms;
}

/**
 * Parses an API timestamp into milliseconds since the epoch (may be fractional for sub-ms input).
 * Accepts: unix seconds with fractions (`1700000000.123`, as Prometheus); values that are only
 * plausible as milliseconds, microseconds or nanoseconds (≥ 1e11, 1e14, 1e17, as VictoriaMetrics);
 * RFC3339 (`2023-11-14T22:13:20.123Z`, offsets) and its shorter prefixes (`2023-11-14`);
 * `now`, and relative forms `now-1h`, `now+5m`, or a bare negative duration `-1h` (relative to now).
 */
export function parseTimestamp(s: string, nowMs: number = Date.now()): number {
  const input = s.trim();
  if (input === "") throw timestampError(s, "empty string");
  if (input === "now") return nowMs;
  if (input.startsWith("now")) {
    const rest = input.slice(3);
    if (rest[0] !== "-" && rest[0] !== "+") throw timestampError(s, "want now, now-<duration> or now+<duration>");
    try {
      return nowMs + parseDuration(rest);
    } catch {
      throw timestampError(s, `bad duration ${JSON.stringify(rest)}`);
    }
  }
  if (/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(input)) {
    const n = Number(input);
    if (!Number.isFinite(n)) throw timestampError(s, "out of range");
    const abs = Math.abs(n);
    if (abs >= 1e17) return n / 1e6; // nanoseconds
    if (abs >= 1e14) return n / 1e3; // microseconds
    if (abs >= 1e11) return n; // milliseconds
    // Seconds, to whole milliseconds as Prometheus' parseTime does (math.Modf, then the
    // fraction rounded half away from zero): "1.001" is 1001 ms, not 1000.9999999999999.
    const whole = Math.trunc(n);
    const frac = (n - whole) * 1000;
    return whole * 1000 + Math.sign(frac) * Math.round(Math.abs(frac));
  }
  if (input[0] === "-" && /[a-z]$/.test(input)) {
    try {
      return nowMs + parseDuration(input);
    } catch {
      throw timestampError(s, "bad relative duration");
    }
  }
  const ms = parseRfc3339(input);
  if (ms === undefined) {
    throw timestampError(s, "want unix seconds, RFC3339 (2006-01-02T15:04:05Z07:00), now-<duration> or -<duration>");
  }
  return ms;
}

/** Formats ms as unix seconds the way the Prometheus API writes them (`1700000000.123`). */
export function formatUnixSeconds(ms: number): number {
  return ms / 1000;
}
