import { createServer as createHttpServer, type Server } from "node:http";
import { createConnection, createServer, type Server as NetServer, type Socket } from "node:net";
import { freePort, isBuilt, serviceMain, startProcess, waitHealthy, type Proc } from "./procs.js";

/** Helpers for agent tests: the agent process, a counter exporter, and a TCP proxy that can go down. */

export function agentBuilt(): boolean {
  return isBuilt("agent");
}

export interface AgentProc {
  readonly url: string;
  proc: Proc;
  restart(): Promise<void>;
  /** A /metrics value (first series whose name and labels start with `prefix`). */
  metric(prefix: string): Promise<number | undefined>;
}

export async function startAgent(flags: readonly string[]): Promise<AgentProc> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [serviceMain("agent"), `-httpListenAddr=127.0.0.1:${port}`, ...flags];
  const a: AgentProc = {
    url,
    proc: startProcess(process.execPath, args),
    async restart() {
      this.proc = startProcess(process.execPath, args);
      await waitHealthy(`${url}/health`, this.proc);
    },
    async metric(prefix) {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(prefix));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
    },
  };
  await waitHealthy(`${url}/health`, a.proc);
  return a;
}

/**
 * An exporter whose counter goes up by one on every scrape; `served` lists (time, value) of
 * each answer, so a test knows exactly which samples were scraped.
 */
export interface CounterExporter {
  readonly addr: string;
  readonly served: { at: number; value: number }[];
  up: boolean;
  close(): Promise<void>;
}

export async function startCounterExporter(name = "agent_test_counter"): Promise<CounterExporter> {
  const port = await freePort();
  const e: CounterExporter = { addr: `127.0.0.1:${port}`, served: [], up: true, close: async () => undefined };
  let n = 0;
  const server: Server = createHttpServer((req, res) => {
    if (!e.up) {
      res.writeHead(503);
      res.end("down for the test");
      return;
    }
    n++;
    e.served.push({ at: Date.now(), value: n });
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(`# TYPE ${name} counter\n${name} ${n}\n`);
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
  e.close = () => new Promise((r) => server.close(() => r()));
  return e;
}

/** A TCP proxy on loopback; `down()` closes it (connections refused) until `up()`. */
export interface Proxy {
  readonly addr: string;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<Proxy> {
  const port = await freePort();
  const [host, tport] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  let server: NetServer | undefined;
  const sockets = new Set<Socket>();
  const listen = (): Promise<void> =>
    new Promise((r) => {
      server = createServer((c) => {
        const u = createConnection(tport, host);
        sockets.add(c);
        sockets.add(u);
        c.pipe(u).pipe(c);
        const end = (): void => {
          c.destroy();
          u.destroy();
          sockets.delete(c);
          sockets.delete(u);
        };
        c.on("error", end).on("close", end);
        u.on("error", end).on("close", end);
      });
      server.listen(port, "127.0.0.1", () => r());
    });
  const stop = (): Promise<void> =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (server === undefined) {
        r();
        return;
      }
      server.close(() => r());
      server = undefined;
    });
  await listen();
  return { addr: `127.0.0.1:${port}`, down: stop, up: listen, close: stop };
}
