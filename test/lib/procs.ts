import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";

/** Helpers for cross-service tests: real processes on loopback, temp dirs, free ports. */

export const repoRoot = resolve(import.meta.dirname, "..", "..");

export function serviceMain(name: string): string {
  return join(repoRoot, "services", name, "dist", "main.js");
}

export function isBuilt(name: string): boolean {
  return existsSync(serviceMain(name));
}

/**
 * Ports for test servers come from below the kernel's ephemeral range (32768–60999 by default,
 * net.ipv4.ip_local_port_range): a port there — what listen(0) hands out — can be taken as the
 * local end of any outbound connection between our check and the server's own bind, and a
 * cluster test makes hundreds of loopback connections (a storage node once failed to start
 * with EADDRINUSE that way). Each vitest worker takes its own block, so parallel test files do
 * not hand out the same port either.
 */
const PORT_BASE = 20_000;
const PORT_BLOCK = 1_500;
const PORT_BLOCKS = 8;
let portCursor = -1;

function canBind(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createServer();
    srv.once("error", () => res(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => res(true)));
  });
}

/** A free TCP port on 127.0.0.1 (bound then released), not handed out twice in a row by this process. */
export async function freePort(): Promise<number> {
  const worker = Number(process.env["VITEST_POOL_ID"] ?? process.pid);
  const start = PORT_BASE + (worker % PORT_BLOCKS) * PORT_BLOCK;
  if (portCursor < 0) portCursor = Math.floor(Math.random() * PORT_BLOCK);
  for (let i = 0; i < PORT_BLOCK; i++) {
    const port = start + (portCursor++ % PORT_BLOCK);
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port in ${start}–${start + PORT_BLOCK - 1} on 127.0.0.1`);
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `strata-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export interface Proc {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** SIGTERM, wait for exit (SIGKILL after `timeoutMs`); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  kill9(): Promise<void>;
}

export function startProcess(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  // STRATA_PROC_LOG_DIR keeps every process's whole output in a file (for diagnosing a failure).
  const logDir = process.env["STRATA_PROC_LOG_DIR"];
  const logFile = logDir ? join(logDir, `${basename(dirname(dirname(args[0] ?? cmd)))}-${basename(args[0] ?? cmd)}-${child.pid ?? 0}.log`) : undefined;
  if (logDir) mkdirSync(logDir, { recursive: true });
  const keep = (d: Buffer): void => {
    out += d.toString();
    if (out.length > 1_000_000) out = out.slice(-500_000);
    if (logFile) appendFileSync(logFile, d);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return {
    child,
    output: () => out,
    async stop(timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Polls `url` until it answers 200 (or throws after `timeoutMs`, with the process output). */
export async function waitHealthy(url: string, proc?: Proc, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (proc && (proc.child.exitCode !== null || proc.child.signalCode !== null)) {
      throw new Error(`process exited (${proc.child.exitCode ?? proc.child.signalCode}) before ${url} was healthy:\n${proc.output()}`);
    }
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) return;
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not healthy after ${timeoutMs} ms (${last})${proc ? `:\n${proc.output()}` : ""}`);
}

/** Sum of the samples of every series whose line starts with `name` on `${base}/metrics`. */
export async function metricSum(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(name)) sum += Number(line.split(" ").pop());
  return sum;
}

/**
 * Polls `fn` until it returns something other than undefined (every `pollMs`); throws after
 * `timeoutMs` naming `what` and the last error `fn` threw.
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000, pollMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** True when an executable is on PATH. */
export function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).status === 0;
}

/**
 * A peer that a test needs (a Debian package's binary). Locally a missing peer skips the test
 * with a message; with CI=true it fails, since .ci/run installs every peer.
 */
export function requirePeer(cmd: string, pkg: string): boolean {
  if (hasCommand(cmd)) return true;
  if (process.env["CI"] === "true") throw new Error(`${cmd} not found: .ci/run should have installed the Debian package ${pkg}`);
  console.warn(`skipping: ${cmd} not installed (apt-get install ${pkg})`);
  return false;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux, USER_HZ = 100). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime
}
