import type { Label } from "@strata/core";
import { METRIC_NAME_LABEL, isLegacyLabelName, isLegacyMetricName } from "@strata/core";
import { formatPromFloat } from "./floats.js";
import type { MetricType } from "./promtext.js";

function escapeLabelValue(v: string): string {
  if (!/[\\"\n]/.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  if (!/[\\\n]/.test(v)) return v;
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A metric name as it appears in HELP/TYPE lines: bare when legacy, else quoted. */
function metaName(name: string): string {
  return isLegacyMetricName(name) ? name : `"${escapeLabelValue(name)}"`;
}

/**
 * One exposition line (with `\n`): `name{a="b"} value [timestamp]`. Names outside the legacy
 * character set are quoted the Prometheus 3 way (`{"my.metric","a.b"="c"}`); values are
 * formatted as Go's 'g' shortest (`1e+06`, `NaN`, `+Inf`); the timestamp is milliseconds.
 */
export function formatTextSample(labels: readonly Label[], value: number, timestampMs?: number): string {
  let name = "";
  for (const l of labels) if (l.name === METRIC_NAME_LABEL) name = l.value;
  const quotedName = name !== "" && !isLegacyMetricName(name);
  let s = quotedName ? `{"${escapeLabelValue(name)}"` : `${name}`;
  let n = quotedName ? 1 : 0;
  for (const l of labels) {
    if (l.name === METRIC_NAME_LABEL) continue;
    s += n === 0 ? "{" : ",";
    s += isLegacyLabelName(l.name) ? l.name : `"${escapeLabelValue(l.name)}"`;
    s += `="${escapeLabelValue(l.value)}"`;
    n++;
  }
  if (n > 0) s += "}";
  s += ` ${formatPromFloat(value)}`;
  if (timestampMs !== undefined) s += ` ${timestampMs}`;
  return `${s}\n`;
}

/** `# HELP` (when help is given) and `# TYPE` lines for a family. */
export function formatTextMetadata(name: string, type: MetricType, help?: string): string {
  const n = metaName(name);
  const h = help === undefined ? "" : `# HELP ${n} ${escapeHelp(help)}\n`;
  return `${h}# TYPE ${n} ${type}\n`;
}

/**
 * Accumulates exposition text and hands it out in chunks of about `chunkBytes` characters,
 * so /federate and /metrics can stream large answers without building one huge string.
 */
export class TextExpositionWriter {
  private parts: string[] = [];
  private size = 0;

  constructor(private readonly chunkBytes = 64 * 1024) {}

  metadata(name: string, type: MetricType, help?: string): void {
    this.push(formatTextMetadata(name, type, help));
  }

  sample(labels: readonly Label[], value: number, timestampMs?: number): void {
    this.push(formatTextSample(labels, value, timestampMs));
  }

  /** A chunk when enough text has accumulated, else undefined. */
  take(): string | undefined {
    return this.size >= this.chunkBytes ? this.flush() : undefined;
  }

  /** Everything accumulated so far (possibly ""). */
  flush(): string {
    const s = this.parts.join("");
    this.parts = [];
    this.size = 0;
    return s;
  }

  private push(s: string): void {
    this.parts.push(s);
    this.size += s.length;
  }
}
