import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

export interface LoggerOptions {
  /** Component name, logged as `component`. */
  readonly name: string;
  /** Minimum level; `-loggerLevel` in services (INFO, WARN, ERROR, … are accepted). */
  readonly level?: string;
  /** Where to write; defaults to stdout. Tests pass a stream to capture lines. */
  readonly destination?: NodeJS.WritableStream;
}

const LEVELS: readonly LevelWithSilent[] = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];

function normalizeLevel(level: string | undefined): LevelWithSilent {
  const l = (level ?? "info").toLowerCase();
  if (l === "panic") return "fatal";
  return (LEVELS as readonly string[]).includes(l) ? (l as LevelWithSilent) : "info";
}

/** A pino logger writing one JSON object per line, with ISO timestamps and the component name. */
export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    level: normalizeLevel(opts.level),
    base: { component: opts.name, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
