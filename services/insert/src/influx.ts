import type { FastifyInstance } from "fastify";

const VERSION = { "X-Influxdb-Version": "1.8.10", "X-Influxdb-Build": "Strata" };

/**
 * What InfluxDB clients call besides writing (Telegraf pings, then runs CREATE DATABASE), under
 * `/insert/<tenant>/influx/`, answered as vminsert does: `ping` 204, `health` pass, and `query`
 * an empty successful result (SHOW DATABASES lists none; Strata keeps `db` as a label).
 */
export function influxHelperRoutes(app: FastifyInstance): void {
  const both = (p: string): string[] => [`/insert/:tenant/influx/${p}`, `/insert/:tenant/influx/${p}/`];
  for (const p of both("ping")) app.all(p, async (_req, reply) => reply.code(204).headers(VERSION).send());
  for (const p of both("health")) {
    app.all(p, async (_req, reply) =>
      reply
        .headers(VERSION)
        .type("application/json")
        .send(`${JSON.stringify({ name: "influxdb", message: "ready for queries and writes", status: "pass", checks: [], version: "1.8.10" })}\n`),
    );
  }
  for (const p of both("query")) {
    app.all(p, async (req, reply) => {
      const q = new URL(req.url, "http://insert").searchParams.get("q") ?? "";
      const result = /^\s*show\s+databases\b/i.test(q) ? { statement_id: 0, series: [{ name: "databases", columns: ["name"], values: [] }] } : { statement_id: 0 };
      return reply.headers(VERSION).type("application/json").send(`${JSON.stringify({ results: [result] })}\n`);
    });
  }
}
