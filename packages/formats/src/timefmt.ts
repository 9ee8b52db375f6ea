/**
 * Timestamp parsing for CSV columns: RFC 3339 and Go time layouts (`custom:<layout>` in the
 * VictoriaMetrics CSV format spec). Returns milliseconds, or undefined when the text does not
 * match. Fractions finer than a millisecond are truncated.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339.exec(s);
  if (m === null) return undefined;
  const off = m[8]!;
  let offsetMin = 0;
  if (off !== "Z" && off !== "z") {
    offsetMin = (Number(off.slice(1, 3)) * 60 + Number(off.slice(4, 6))) * (off[0] === "-" ? -1 : 1);
  }
  return build(
    Number(m[1]),
    Number(m[2]),
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
    fracMs(m[7] ?? ""),
    offsetMin,
  );
}

function fracMs(digits: string): number {
  return digits === "" ? 0 : Number((digits + "00").slice(0, 3));
}

function build(y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number, offsetMin: number): number | undefined {
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return undefined;
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  // Date.UTC rolls over invalid days (Feb 30): reject instead.
  if (new Date(t).getUTCDate() !== d) return undefined;
  return t - offsetMin * 60_000;
}

type Tok =
  | { readonly k: "lit"; readonly s: string }
  | { readonly k: "year4" | "year2" | "monthName" | "monthAbbr" | "month2" | "month" | "day2" | "day_" | "day" }
  | { readonly k: "yday3" | "hour24" | "hour12_2" | "hour12" | "min2" | "min" | "sec2" | "sec" | "PM" | "pm" }
  | { readonly k: "weekday" | "weekdayAbbr" | "tzName" }
  | { readonly k: "tz"; readonly z: boolean; readonly colon: boolean; readonly minutes: boolean }
  | { readonly k: "frac"; readonly n: number; readonly optional: boolean };

// Longest first where prefixes overlap, mirroring Go's nextStdChunk.
const STD: readonly [string, Tok][] = [
  ["January", { k: "monthName" }],
  ["Jan", { k: "monthAbbr" }],
  ["Monday", { k: "weekday" }],
  ["Mon", { k: "weekdayAbbr" }],
  ["MST", { k: "tzName" }],
  ["2006", { k: "year4" }],
  ["002", { k: "yday3" }],
  ["01", { k: "month2" }],
  ["02", { k: "day2" }],
  ["03", { k: "hour12_2" }],
  ["04", { k: "min2" }],
  ["05", { k: "sec2" }],
  ["06", { k: "year2" }],
  ["15", { k: "hour24" }],
  ["_2", { k: "day_" }],
  ["1", { k: "month" }],
  ["2", { k: "day" }],
  ["3", { k: "hour12" }],
  ["4", { k: "min" }],
  ["5", { k: "sec" }],
  ["PM", { k: "PM" }],
  ["pm", { k: "pm" }],
  ["Z07:00", { k: "tz", z: true, colon: true, minutes: true }],
  ["Z0700", { k: "tz", z: true, colon: false, minutes: true }],
  ["Z07", { k: "tz", z: true, colon: false, minutes: false }],
  ["-07:00", { k: "tz", z: false, colon: true, minutes: true }],
  ["-0700", { k: "tz", z: false, colon: false, minutes: true }],
  ["-07", { k: "tz", z: false, colon: false, minutes: false }],
];

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/** Tokenizes a Go reference-time layout ("2006-01-02 15:04:05.000 -0700"). */
export function compileGoLayout(layout: string): readonly Tok[] {
  const out: Tok[] = [];
  let lit = "";
  let i = 0;
  outer: while (i < layout.length) {
    const c = layout[i]!;
    // Fractional seconds: ".000" / ",000" (fixed) or ".999" (optional), after a digit-free point.
    if ((c === "." || c === ",") && (layout[i + 1] === "0" || layout[i + 1] === "9")) {
      const d = layout[i + 1]!;
      let j = i + 1;
      while (layout[j] === d) j++;
      if (!/[0-9]/.test(layout[j] ?? "")) {
        if (lit) out.push({ k: "lit", s: lit });
        lit = "";
        out.push({ k: "frac", n: j - i - 1, optional: d === "9" });
        i = j;
        continue;
      }
    }
    for (const [pat, tok] of STD) {
      if (layout.startsWith(pat, i)) {
        if (lit) out.push({ k: "lit", s: lit });
        lit = "";
        out.push(tok);
        i += pat.length;
        continue outer;
      }
    }
    lit += c;
    i++;
  }
  if (lit) out.push({ k: "lit", s: lit });
  return out;
}

/** Parses `s` with a compiled Go layout; undefined when it does not match. Default zone UTC. */
export function parseGoTime(toks: readonly Tok[], s: string): number | undefined {
  let i = 0;
  let year = 1970;
  let month = 1;
  let day = 1;
  let hour = 0;
  let min = 0;
  let sec = 0;
  let ms = 0;
  let pm: boolean | undefined;
  let offsetMin = 0;
  let yday = -1;
  const num = (minLen: number, maxLen: number): number | undefined => {
    let j = i;
    while (j < s.length && j - i < maxLen && s.charCodeAt(j) >= 0x30 && s.charCodeAt(j) <= 0x39) j++;
    if (j - i < minLen) return undefined;
    const v = Number(s.slice(i, j));
    i = j;
    return v;
  };
  const word = (list: readonly string[], abbr: boolean): number | undefined => {
    for (let k = 0; k < list.length; k++) {
      const w = abbr ? list[k]!.slice(0, 3) : list[k]!;
      if (s.slice(i, i + w.length).toLowerCase() === w.toLowerCase()) {
        i += w.length;
        return k;
      }
    }
    return undefined;
  };
  for (const t of toks) {
    let v: number | undefined;
    switch (t.k) {
      case "lit":
        if (!s.startsWith(t.s, i)) return undefined;
        i += t.s.length;
        continue;
      case "year4":
        v = num(4, 4);
        if (v === undefined) return undefined;
        year = v;
        continue;
      case "year2":
        v = num(2, 2);
        if (v === undefined) return undefined;
        year = v >= 69 ? 1900 + v : 2000 + v;
        continue;
      case "monthName":
      case "monthAbbr":
        v = word(MONTHS, t.k === "monthAbbr");
        if (v === undefined) return undefined;
        month = v + 1;
        continue;
      case "weekday":
      case "weekdayAbbr":
        if (word(DAYS, t.k === "weekdayAbbr") === undefined) return undefined;
        continue;
      case "month2":
      case "month":
        v = t.k === "month2" ? num(2, 2) : num(1, 2);
        if (v === undefined) return undefined;
        month = v;
        continue;
      case "day2":
      case "day":
      case "day_":
        if (t.k === "day_" && s[i] === " ") i++;
        v = t.k === "day2" ? num(2, 2) : num(1, 2);
        if (v === undefined) return undefined;
        day = v;
        continue;
      case "yday3":
        v = num(3, 3);
        if (v === undefined) return undefined;
        yday = v;
        continue;
      case "hour24":
        v = num(2, 2);
        if (v === undefined) return undefined;
        hour = v;
        continue;
      case "hour12_2":
      case "hour12":
        v = t.k === "hour12_2" ? num(2, 2) : num(1, 2);
        if (v === undefined || v > 12) return undefined;
        hour = v;
        continue;
      case "min2":
      case "min":
        v = t.k === "min2" ? num(2, 2) : num(1, 2);
        if (v === undefined) return undefined;
        min = v;
        continue;
      case "sec2":
      case "sec":
        v = t.k === "sec2" ? num(2, 2) : num(1, 2);
        if (v === undefined) return undefined;
        sec = v;
        // Go accepts a fraction after seconds even when the layout has none.
        if ((s[i] === "." || s[i] === ",") && /[0-9]/.test(s[i + 1] ?? "") && !toks.some((x) => x.k === "frac")) {
          i++;
          const start = i;
          while (i < s.length && /[0-9]/.test(s[i]!)) i++;
          ms = fracMs(s.slice(start, i));
        }
        continue;
      case "PM":
      case "pm": {
        const w = s.slice(i, i + 2).toUpperCase();
        if (w !== "AM" && w !== "PM") return undefined;
        pm = w === "PM";
        i += 2;
        continue;
      }
      case "tzName": {
        const m = /^[A-Z]{3,5}|^[+-]\d{2,4}/.exec(s.slice(i));
        if (m === null) return undefined;
        i += m[0].length;
        continue; // zone abbreviations are taken as UTC, as Go does for unknown names
      }
      case "tz": {
        if (t.z && (s[i] === "Z" || s[i] === "z")) {
          i++;
          continue;
        }
        const sign = s[i];
        if (sign !== "+" && sign !== "-") return undefined;
        i++;
        const hh = num(2, 2);
        if (hh === undefined) return undefined;
        let mm = 0;
        if (t.minutes) {
          if (t.colon) {
            if (s[i] !== ":") return undefined;
            i++;
          }
          const m2 = num(2, 2);
          if (m2 === undefined) return undefined;
          mm = m2;
        }
        offsetMin = (hh * 60 + mm) * (sign === "-" ? -1 : 1);
        continue;
      }
      case "frac": {
        if (s[i] !== "." && s[i] !== ",") {
          if (t.optional) continue;
          return undefined;
        }
        i++;
        const start = i;
        while (i < s.length && /[0-9]/.test(s[i]!)) i++;
        if (!t.optional && i - start !== t.n) return undefined;
        if (i === start) return undefined;
        ms = fracMs(s.slice(start, i));
        continue;
      }
    }
  }
  if (i !== s.length) return undefined;
  if (pm !== undefined) {
    if (hour === 12) hour = 0;
    if (pm) hour += 12;
  }
  if (yday >= 0) {
    const t = Date.UTC(year, 0, 1) + (yday - 1) * 86_400_000;
    const d = new Date(t);
    month = d.getUTCMonth() + 1;
    day = d.getUTCDate();
  }
  return build(year, month, day, hour, min, sec, ms, offsetMin);
}
