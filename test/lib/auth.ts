import { writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { freePort, repoRoot, serviceMain, startProcess, tempDir, waitHealthy, type Proc } from "./procs.js";

/** Helpers for the auth proxy's end-to-end tests: strata-auth, vmauth and echo backends as processes. */

export interface Running {
  readonly url: string;
  readonly port: number;
  readonly proc: Proc;
}

/** An echo backend process (test/fixtures/echo-backend.mjs) answering JSON about each request. */
export async function startEcho(name: string, status = 200): Promise<Running> {
  const port = await freePort();
  const proc = startProcess(process.execPath, [join(repoRoot, "test", "fixtures", "echo-backend.mjs"), `-listen=127.0.0.1:${port}`, `-name=${name}`, `-status=${status}`]);
  const deadline = Date.now() + 10_000;
  while (!proc.output().includes("listening")) {
    if (Date.now() > deadline || proc.child.exitCode !== null) throw new Error(`echo backend ${name} did not start:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `http://127.0.0.1:${port}`, port, proc };
}

export interface AuthProcess extends Running {
  readonly configFile: string;
  /** Rewrites the config file (then SIGHUP or /-/reload applies it). */
  writeConfig(text: string): void;
  stop(): Promise<void>;
}

/** strata-auth (or, with `cmd: "vmauth"`, Debian's vmauth) with `config` as -auth.config. */
export async function startAuth(
  config: string,
  opts: { flags?: readonly string[]; cmd?: "strata" | "vmauth"; scheme?: "http" | "https"; healthCa?: string; healthInsecure?: boolean } = {},
): Promise<AuthProcess> {
  const dir = tempDir("auth");
  const configFile = join(dir.path, "auth.yml");
  writeFileSync(configFile, config);
  const port = await freePort();
  const args = [`-auth.config=${configFile}`, `-httpListenAddr=127.0.0.1:${port}`, ...(opts.flags ?? [])];
  const proc = opts.cmd === "vmauth" ? startProcess("vmauth", args) : startProcess(process.execPath, [serviceMain("auth"), ...args]);
  const scheme = opts.scheme ?? "http";
  const url = `${scheme}://127.0.0.1:${port}`;
  try {
    if (scheme === "http") await waitHealthy(`${url}/health`, proc);
    else {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const r = await rawRequest(url, "/health", { ca: opts.healthCa, insecure: opts.healthInsecure === true }).catch(() => undefined);
        if (r?.status === 200) break;
        if (Date.now() > deadline || proc.child.exitCode !== null) throw new Error(`auth did not start:\n${proc.output()}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
  } catch (err) {
    await proc.stop();
    dir.remove();
    throw err;
  }
  return {
    url,
    port,
    proc,
    configFile,
    writeConfig: (text) => writeFileSync(configFile, text),
    async stop() {
      await proc.stop();
      dir.remove();
    },
  };
}

export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/**
 * One request with the path sent exactly as given (fetch would resolve `..` and `%2e%2e`
 * itself, which would hide what the proxy does with them).
 */
export function rawRequest(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string | undefined; ca?: string | undefined; timeoutMs?: number; insecure?: boolean } = {},
): Promise<RawResponse> {
  const u = new URL(base);
  const isHttps = u.protocol === "https:";
  return new Promise((resolve, reject) => {
    const req = (isHttps ? httpsRequest : httpRequest)({
      host: u.hostname,
      port: Number(u.port),
      method: opts.method ?? "GET",
      path,
      headers: opts.headers ?? {},
      agent: false,
      ...(isHttps ? { ca: opts.ca, servername: "localhost", rejectUnauthorized: opts.insecure !== true } : {}),
      timeout: opts.timeoutMs ?? 20_000,
    });
    req.on("timeout", () => req.destroy(new Error(`timeout on ${path}`)));
    req.on("error", reject);
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.end(opts.body);
  });
}

export const basicAuth = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
