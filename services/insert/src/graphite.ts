import { createServer, type Server, type Socket } from "node:net";
import { errorMessage, parseListenAddr, parseTenant, type LabelLimits, type Logger, type MetricsRegistry, type SampleWindow } from "@strata/core";
import { GraphiteParser, RowsBatchSink } from "@strata/formats";
import type { RowsIgnored } from "./ignored.js";
import type { RowsWriter } from "./import.js";
import type { RelabelHook } from "./relabel-hook.js";

export interface GraphiteServerOptions {
  /** `-graphiteListenAddr` (`:2003`, `127.0.0.1:2003`). */
  readonly addr: string;
  /** `-graphite.tenant` (`accountID[:projectID]`). */
  readonly tenant: string;
  readonly cluster: RowsWriter;
  readonly limits: LabelLimits;
  readonly relabel: RelabelHook;
  readonly maxLineBytes: number;
  readonly log: Logger;
  readonly metrics: MetricsRegistry;
  /** The timestamps kept now (-retentionPeriod, -futureRetention); rows outside are counted. */
  readonly window: () => SampleWindow;
  readonly ignored: RowsIgnored;
}

export interface GraphiteServer {
  readonly port: number;
  /** Stops accepting, lets every connection send what it has parsed, then closes them. */
  close(): Promise<void>;
}

/** Rows a connection buffers before it stops reading and sends them to storage. */
const FLUSH_BYTES = 1024 * 1024;

/**
 * Graphite plaintext over TCP. A connection has no request to reject, so (as in VictoriaMetrics)
 * a bad line is logged, counted (strata_rows_rejected_total{type="graphite"}) and skipped;
 * invalid UTF-8 or an over-long line closes the connection. Rows are sent to storage once the
 * reads at hand are parsed (at once past FLUSH_BYTES); the socket is paused while a send is in flight, so memory
 * per connection stays at about one read plus FLUSH_BYTES, and a slow storage slows the sender
 * through TCP back-pressure. Lines without a timestamp get the time they were read.
 */
export async function startGraphiteServer(o: GraphiteServerOptions): Promise<GraphiteServer> {
  const tenant = parseTenant(o.tenant);
  const m = o.metrics;
  const inserted = m.counter('strata_rows_inserted_total{type="graphite"}', "Rows (samples) stored, by protocol.");
  const badLines = m.counter('strata_rows_rejected_total{type="graphite",reason="parse_error"}', "Rows read from requests that were rejected, by protocol and reason.");
  const failed = m.counter('strata_rows_rejected_total{type="graphite",reason="unavailable"}');
  const conns = new Set<Socket>();
  const pending = new Set<Promise<void>>();
  m.gauge("strata_graphite_connections", "Open Graphite TCP connections.", () => conns.size);

  const handle = (sock: Socket): void => {
    conns.add(sock);
    const sink = new RowsBatchSink({ tenant, limits: o.limits, transform: o.relabel.liveTransform("graphite"), window: o.window() });
    let dropped = 0;
    let tooOld = 0;
    let tooNew = 0;
    const parser = new GraphiteParser(sink, {
      maxLineBytes: o.maxLineBytes,
      onInvalidLine: (err) => {
        badLines.inc();
        o.log.warn({ err: err.message, remote: sock.remoteAddress }, "graphite: skipping invalid line");
      },
    });
    let flushing: Promise<void> | null = null;
    let scheduled = false;
    const flush = (): Promise<void> => {
      if (flushing !== null) return flushing;
      o.ignored("graphite", sink.rowsTooOld - tooOld, sink.rowsTooNew - tooNew);
      tooOld = sink.rowsTooOld;
      tooNew = sink.rowsTooNew;
      const w = sink.writer;
      if (w.length === 0) return Promise.resolve();
      sock.pause();

      // A copy, so rows parsed while the send is in flight go to the emptied writer.
      const batch = w.finish();
      const rows = w.length;
      w.reset();
      const p = (async () => {
        try {
          await o.cluster.write(batch);
          inserted.add(rows);
        } catch (err) {
          failed.add(rows);
          o.log.warn({ err: errorMessage(err), rows }, "graphite: cannot store rows");
        } finally {
          o.relabel.countDroppedRows("graphite", sink.rowsDropped - dropped);
          dropped = sink.rowsDropped;
          flushing = null;
          if (!sock.destroyed) sock.resume();
        }
      })();
      flushing = p;
      pending.add(p);
      void p.then(() => pending.delete(p));
      return p;
    };
    const fail = (err: unknown): void => {
      badLines.inc();
      o.log.warn({ err: errorMessage(err), remote: sock.remoteAddress }, "graphite: closing connection");
      sock.destroy();
    };
    sock.on("data", (chunk: Buffer) => {
      sink.setWindow(o.window());
      try {
        parser.write(chunk);
      } catch (err) {
        fail(err);
        return;
      }
      // Reads that arrive together share one send; a big backlog is sent at once.
      if (sink.writer.byteLength >= FLUSH_BYTES) void flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          void flush();
        });
      }
    });
    sock.on("end", () => {
      try {
        parser.end();
      } catch (err) {
        fail(err);
      }
      void (async () => {
        while (flushing !== null || sink.writer.length > 0) await flush();
        sock.end();
      })();
    });
    sock.on("error", (err) => o.log.debug({ err: err.message }, "graphite connection error"));
    sock.on("close", () => conns.delete(sock));
  };

  const server: Server = createServer({ pauseOnConnect: false }, handle);
  const { host, port } = parseListenAddr(o.addr);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const a = server.address();
  const bound = typeof a === "object" && a !== null ? a.port : port;
  o.log.info({ graphitePort: bound, tenant: o.tenant }, "graphite listener started");
  return {
    port: bound,
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      await Promise.all([...pending]);
      for (const s of conns) s.destroy();
      await closed;
    },
  };
}
