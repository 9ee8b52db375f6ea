import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { contentTypeOf, resolveUiPath, serveUi, uiDistDir } from "@strata/ui";

let root: string;
let server: Server;
let port: number;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "strata-ui-"));
  mkdirSync(join(root, "assets"));
  writeFileSync(join(root, "index.html"), "<!doctype html><title>t</title>");
  writeFileSync(join(root, "assets", "index-abc.js"), "console.log(1)");
  writeFileSync(join(root, "assets", "index-abc.css"), "body{}");
  writeFileSync(join(root, "..", "strata-ui-secret.txt"), "TOP-SECRET-CONTENT");
  // Mounted the way select mounts it: everything after /select/<tenant>/vmui.
  server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const m = /^\/selectx?\/[^/]+\/vmui(.*)$/.exec(path);
    if (!m) { res.writeHead(404); res.end(); return; }
    // /selectx/… mimics services/select, which passes the path after "vmui/" without its slash.
    const rest = m[1] ?? "";
    void serveUi(req, res, req.url?.startsWith("/selectx") ? rest.replace(/^\//, "") : rest, { root });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const a = server.address();
  port = typeof a === "object" && a ? a.port : 0;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(root, { recursive: true, force: true });
  rmSync(join(root, "..", "strata-ui-secret.txt"), { force: true });
});

// Raw requests: fetch() would normalise "..", which is what an attacker would not do.
function get(path: string, method = "GET", headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("serveUi", () => {
  it.each([
    ["/select/0/vmui/", 200, "text/html; charset=utf-8", "no-cache", "<!doctype html>"],
    ["/select/0/vmui/?tab=graph&q=up", 200, "text/html; charset=utf-8", "no-cache", "<!doctype html>"],
    ["/select/5:1/vmui/index.html", 200, "text/html; charset=utf-8", "no-cache", "<!doctype html>"],
    ["/select/0/vmui/some/client/route", 200, "text/html; charset=utf-8", "no-cache", "<!doctype html>"],
    ["/select/0/vmui/assets/index-abc.js", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "console.log(1)"],
    ["/select/0/vmui/assets/index-abc.css", 200, "text/css; charset=utf-8", "public, max-age=31536000, immutable", "body{}"],
    ["/selectx/0/vmui/", 200, "text/html; charset=utf-8", "no-cache", "<!doctype html>"],
    ["/selectx/0/vmui/assets/index-abc.js", 200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "console.log(1)"],
    ["/select/0/vmui/assets/missing.js", 404, "text/plain; charset=utf-8", undefined, "no such UI file"],
  ])("GET %s → %d", async (path, status, type, cache, body) => {
    const r = await get(path);
    expect(r.status).toBe(status);
    expect(r.headers["content-type"]).toBe(type);
    expect(r.headers["cache-control"]).toBe(cache);
    expect(r.body).toContain(body);
  });

  it.each([
    "/select/0/vmui/../strata-ui-secret.txt",
    "/select/0/vmui/assets/../../strata-ui-secret.txt",
    "/select/0/vmui/%2e%2e/strata-ui-secret.txt",
    "/select/0/vmui/assets%2f..%2f..%2fstrata-ui-secret.txt",
    "/select/0/vmui/..%5cstrata-ui-secret.txt",
    "/select/0/vmui/%00.js",
    "/select/0/vmui/%E0%A4%A.js",
  ])("refuses %s", async (path) => {
    const r = await get(path);
    expect(r.status).toBe(400);
    expect(r.body).not.toContain("TOP-SECRET-CONTENT");
  });

  it("redirects …/vmui to …/vmui/ keeping the query", async () => {
    const r = await get("/select/3/vmui?tab=table");
    expect(r.status).toBe(301);
    expect(r.headers["location"]).toBe("/select/3/vmui/?tab=table");
  });

  it("answers HEAD without a body, 304 on a matching ETag, 405 on POST", async () => {
    const head = await get("/select/0/vmui/assets/index-abc.js", "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(head.headers["content-length"]).toBe("14");
    const etag = String(head.headers["etag"]);
    const again = await get("/select/0/vmui/assets/index-abc.js", "GET", { "if-none-match": etag });
    expect(again.status).toBe(304);
    expect((await get("/select/0/vmui/", "POST")).status).toBe(405);
  });

  it("says so when the UI is not built", async () => {
    const empty = mkdtempSync(join(tmpdir(), "strata-ui-empty-"));
    const srv = createServer((req, res) => void serveUi(req, res, "/", { root: empty }));
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const a = srv.address();
    const r = await fetch(`http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}/`);
    expect(r.status).toBe(503);
    expect(await r.text()).toContain("pnpm --filter @strata/ui build");
    await new Promise<void>((r2) => srv.close(() => r2()));
    rmSync(empty, { recursive: true, force: true });
  });
});

describe("resolveUiPath", () => {
  it.each([
    ["/", "index.html"], ["", "index.html"], ["/assets/a.js", "assets/a.js"], ["/./assets//a.js", "assets/a.js"],
    ["/x?y=1", "index.html"], ["/a%20b.png", "a b.png"],
  ])("%j → %s", (p, want) => {
    expect(resolveUiPath("/r", p)).toBe(join("/r", want));
  });
  it.each([["x.js", "text/javascript; charset=utf-8"], ["x.SVG", "image/svg+xml"], ["x.bin", "application/octet-stream"]])("contentTypeOf(%s)", (f, t) => {
    expect(contentTypeOf(f)).toBe(t);
  });
  it("points at the built UI inside the package", () => {
    expect(uiDistDir).toMatch(/packages[/\\]ui[/\\]dist[/\\]app$/);
  });
});
