// Durations, steps and time formatting for the UI. Durations use Prometheus units.

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000,
};

/** "1h30m" → 5_400_000; "15" (seconds) → 15_000; undefined when malformed. */
export function parseDurationMs(s: string): number | undefined {
  const t = s.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  if (t === "" || !/^(\d+(ms|s|m|h|d|w|y))+$/.test(t)) return undefined;
  let total = 0;
  for (const m of t.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? 0);
  }
  return total;
}

/** 5_400_000 → "1h30m"; 0 → "0s". */
export function formatDuration(ms: number): string {
  if (ms <= 0) return "0s";
  let rest = Math.round(ms);
  let out = "";
  for (const [u, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1_000], ["ms", 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${u}`;
      rest -= n * size;
    }
  }
  return out;
}

export const RELATIVE_RANGES = ["5m", "15m", "30m", "1h", "3h", "6h", "12h", "24h", "2d", "7d", "30d"] as const;
export const REFRESH_INTERVALS = ["off", "5s", "10s", "15s", "30s", "1m"] as const;

const NICE_STEPS_MS = [
  1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000,
  3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000,
];

/** Auto step: about one point per two pixels of chart width, rounded up to a nice value. */
export function autoStepMs(rangeMs: number, widthPx = 1000): number {
  const raw = rangeMs / Math.max(100, widthPx / 2);
  for (const s of NICE_STEPS_MS) if (s >= raw) return s;
  return Math.ceil(raw / 86_400_000) * 86_400_000;
}

/** "2026-11-21 13:54:00" in the given IANA zone ("browser" = the browser's own). */
export function formatTime(ms: number, tz: string): string {
  const opts: Intl.DateTimeFormatOptions = {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  };
  if (tz !== "browser") opts.timeZone = tz;
  const parts = new Intl.DateTimeFormat("en-CA", opts).formatToParts(new Date(ms));
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? "";
  return `${get("year")}-${get("month")}-${get("day")} ${get("hour")}:${get("minute")}:${get("second")}`;
}

/**
 * Parses an absolute time typed by a user: RFC 3339 with a zone ("…Z", "…+02:00"), unix seconds,
 * or a wall-clock "YYYY-MM-DD HH:MM[:SS]" read in `tz` ("browser" = the browser's zone).
 */
export function parseTimeInput(s: string, tz = "UTC"): number | undefined {
  const t = s.trim();
  if (t === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  if (/^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(t)) {
    const asUtc = Date.parse(t.replace(" ", "T") + "Z");
    if (!Number.isFinite(asUtc)) return undefined;
    if (tz === "UTC") return asUtc;
    // Find the instant whose wall clock in tz reads `t`; twice, for DST edges.
    let guess = asUtc;
    for (let i = 0; i < 2; i++) {
      const wall = Date.parse(formatTime(guess, tz).replace(" ", "T") + "Z");
      guess += asUtc - wall;
    }
    return guess;
  }
  const ms = Date.parse(t);
  return Number.isFinite(ms) ? ms : undefined;
}

export function timeZones(): string[] {
  const fn = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf;
  const zones = fn ? fn("timeZone") : [];
  return ["browser", "UTC", ...zones.filter((z) => z !== "UTC")];
}
