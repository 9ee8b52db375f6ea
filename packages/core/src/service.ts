import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import type { Logger } from "pino";
import { BadDataError, PayloadTooLargeError, errorMessage } from "./errors.js";
import { defineFlags, flag, formatHelp, parseFlags, type FlagSpecs, type FlagValues } from "./flags.js";
import { createLogger } from "./logger.js";
import { allowedMemoryBytes } from "./memory.js";
import { MetricsRegistry, registerProcessMetrics } from "./metrics.js";

/**
 * The skeleton every service's main.ts uses: parse flags (-help prints them and exits 0; a bad
 * flag exits 2 naming it), create the logger and the metrics registry, start the service, wait
 * for SIGTERM/SIGINT, then stop the parts in reverse order, logging how long each step took.
 */

/** A running part of a service, stopped in reverse order of registration. */
export interface Closer {
  readonly name: string;
  close(): Promise<void> | void;
}

export interface ServiceContext<S extends FlagSpecs> {
  readonly flags: FlagValues<S>;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** Bytes this process may use for caches and buffers (-memory.allowedPercent / -memory.allowedBytes). */
  readonly allowedMemory: number;
  /** Registers a part to stop on shutdown (last registered stops first). */
  onShutdown(closer: Closer): void;
}

export interface ServiceDefinition<S extends FlagSpecs> {
  readonly name: string;
  readonly summary: string;
  readonly flags: S;
  start(ctx: ServiceContext<S>): Promise<void>;
}

/** Flags of the process itself, which every service takes (runService applies them). */
export const processFlags = defineFlags({
  "memory.heapGrowthPercent": flag.int(
    300,
    "How far (percent) the JS heap may grow past its live size before the next full GC, like Go's GOGC (0: V8's own heuristics, which on a small heap run a full GC every few requests).",
  ),
  "memory.allowedPercent": flag.float(
    60,
    "Percent of the machine's memory (or of the cgroup's limit) that caches and buffers may use together; each cache takes a fixed share unless its own flag sets a cap (docs/limits.md). Too low a value makes caches miss, too high leaves no room for the OS page cache.",
  ),
  "memory.allowedBytes": flag.bytes(0, "Memory that caches and buffers may use together, in bytes (e.g. 4GiB); when set (> 0) it overrides -memory.allowedPercent."),
});

/**
 * Applies processFlags. V8 reads --heap-growing-percent each time it sets the next full-GC
 * limit, so it works after start. Its default sizes that limit from the live heap, and while
 * the room left is below the young generation's size (16 MiB once busy) it starts marking from
 * a task at once: a server with a small live heap and a high allocation rate (insert: ~13 MiB
 * live, ~100 MB/s allocated) ran ~10 full GCs a second, a fifth of its CPU (docs/benchmarks.md).
 */
export function applyProcessFlags(values: FlagValues<typeof processFlags>): void {
  const pct = values["memory.heapGrowthPercent"];
  if (pct < 0 || pct > 10_000) {
    throw new BadDataError(`-memory.heapGrowthPercent=${pct}: want 0 (V8's heuristics) to 10000`, "STRATA_INVALID_FLAG");
  }
  if (pct > 0) setFlagsFromString(`--heap-growing-percent=${pct}`);
  allowedMemoryBytes(values["memory.allowedPercent"], values["memory.allowedBytes"]);
}

/** Strata's version (every workspace package carries the same one; this is @strata/core's). */
export function strataVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** What `-version` prints, like VictoriaMetrics' `<binary>-<version>`: `strata-select-v0.1.0 (node v20.19.0)`. */
export function versionLine(program: string): string {
  return `${program}-v${strataVersion()} (node ${process.version})`;
}

export async function runService<S extends FlagSpecs>(def: ServiceDefinition<S>, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const specs = { ...processFlags, ...def.flags };
  let parsed;
  try {
    parsed = parseFlags(specs, argv);
    applyProcessFlags(parsed.values);
  } catch (err) {
    process.stderr.write(`${def.name}: ${errorMessage(err)}\n`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(formatHelp(specs, def.name, def.summary));
    process.exit(0);
  }
  if (parsed.version) {
    process.stdout.write(`${versionLine(def.name)}\n`);
    process.exit(0);
  }
  if (parsed.args.length > 0) {
    process.stderr.write(`${def.name}: unexpected argument ${JSON.stringify(parsed.args[0])}; flags look like -name=value (see -help)\n`);
    process.exit(2);
  }
  const flagValues = parsed.values as Record<string, unknown>;
  const level = typeof flagValues["loggerLevel"] === "string" ? (flagValues["loggerLevel"] as string) : undefined;
  const log = createLogger(level === undefined ? { name: def.name } : { name: def.name, level });
  const metrics = new MetricsRegistry();
  registerProcessMetrics(metrics);
  const own = parsed.values as FlagValues<typeof processFlags>;
  const allowedMemory = allowedMemoryBytes(own["memory.allowedPercent"], own["memory.allowedBytes"]);
  const heapLimit = getHeapStatistics().heap_size_limit;
  metrics.gauge("strata_memory_allowed_bytes", "Memory caches and buffers may use together (-memory.allowedPercent / -memory.allowedBytes).", () => allowedMemory);
  metrics.gauge("nodejs_heap_size_limit_bytes", "V8's heap limit (node --max-old-space-size, see docs/limits.md).", () => heapLimit);
  const closers: Closer[] = [];
  let stopping = false;

  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const t0 = performance.now();
    log.info({ signal }, "received signal; shutting down");
    let failed = false;
    for (const c of closers.reverse()) {
      const t = performance.now();
      try {
        await c.close();
        log.info({ step: c.name, durationMs: Math.round(performance.now() - t) }, `stopped ${c.name}`);
      } catch (err) {
        failed = true;
        log.error({ step: c.name, err: errorMessage(err) }, `error stopping ${c.name}`);
      }
    }
    log.info({ durationMs: Math.round(performance.now() - t0) }, "shutdown complete");
    log.flush();
    process.exit(failed ? 1 : 0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));

  const t0 = performance.now();
  try {
    await def.start({ flags: parsed.values, log, metrics, allowedMemory, onShutdown: (c) => closers.push(c) });
  } catch (err) {
    log.fatal({ err: errorMessage(err) }, "cannot start");
    for (const c of closers.reverse()) {
      try {
        await c.close();
      } catch {
        // best effort while failing to start
      }
    }
    log.flush();
    process.exit(1);
  }
  // The memory figures ride on the started line: a check-and-exit run (-dryRun, alert's -test)
  // exits inside start() and prints only its verdict.
  log.info({ durationMs: Math.round(performance.now() - t0), allowedMemory, heapLimit }, `${def.name} started`);
}

/** Splits `-httpListenAddr` forms (`:8480`, `127.0.0.1:8480`, `[::1]:8480`) into host and port. */
export function parseListenAddr(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new BadDataError(`invalid listen address ${JSON.stringify(addr)}: want [host]:port, e.g. :8480`, "STRATA_INVALID_FLAG");
  }
  const host = m[1] ?? m[2];
  return { host: host === "" || host === undefined ? undefined : host, port };
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Starts an HTTP server on `addr` and resolves once it listens; the port is on `server.address()`. */
export async function listenHttp(
  addr: string,
  handler: HttpHandler,
  log?: Logger,
  /** e.g. httpsec's createServer(listener, certs) for HTTPS; plain HTTP by default. */
  makeServer: (listener: (req: IncomingMessage, res: ServerResponse) => void) => Server = createServer,
): Promise<Server> {
  const { host, port } = parseListenAddr(addr);
  const server = makeServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      log?.error({ err: errorMessage(err), url: req.url }, "unhandled error in HTTP handler");
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        res.end(`internal error: ${errorMessage(err)}\n`);
      } else {
        res.destroy();
      }
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

/** Closes an HTTP server: stop accepting, let in-flight requests finish, drop idle keep-alives. */
export function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeIdleConnections();
  });
}

/** Reads a request body up to `limit` bytes; throws PayloadTooLargeError (413) past it. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) {
      req.resume();
      throw new PayloadTooLargeError(`request body exceeds the limit of ${limit} bytes`);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks, size);
}
