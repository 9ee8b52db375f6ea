import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Absolute path of the built UI (index.html + assets/). Compiled, this module sits in
 * dist/node and the UI in dist/app; run from sources (tests, tsx) it sits in src.
 */
export const uiDistDir: string = [resolve(here, "../app"), resolve(here, "../dist/app")].find((d) =>
  existsSync(join(d, "index.html")),
) ?? resolve(here, "../dist/app");

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

export function contentTypeOf(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
}

/**
 * Maps the request path below `vmui` to a file inside `root`, or undefined when the path is
 * malformed or escapes root. "" and "/" and extension-less paths resolve to index.html so that
 * client-side state survives a reload.
 */
export function resolveUiPath(root: string, pathAfterVmui: string): string | undefined {
  const q = pathAfterVmui.search(/[?#]/);
  let p = q >= 0 ? pathAfterVmui.slice(0, q) : pathAfterVmui;
  try {
    p = decodeURIComponent(p);
  } catch {
    return undefined;
  }
  if (p.includes("\0") || p.includes("\\")) return undefined;
  const parts: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") return undefined;
    parts.push(seg);
  }
  const last = parts[parts.length - 1];
  if (last === undefined || extname(last) === "") return join(root, "index.html");
  const full = resolve(root, ...parts);
  const rootWithSep = root.endsWith(sep) ? root : root + sep;
  return full.startsWith(rootWithSep) ? full : undefined;
}

export interface ServeUiOptions {
  /** Directory to serve; defaults to {@link uiDistDir}. */
  readonly root?: string;
}

function plain(res: ServerResponse, status: number, msg: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...extra });
  res.end(msg + "\n");
}

/**
 * Serves the built UI. `pathAfterVmui` is what follows `…/vmui` or `…/vmui/` in the request
 * path, with or without its leading slash ("/" or "" → index.html, "assets/x.js" → that file);
 * a request for `…/vmui` itself (no trailing slash) is redirected to `…/vmui/`.
 * Hashed files under assets/ are cached for a year; index.html is revalidated every time.
 */
export async function serveUi(
  req: IncomingMessage,
  res: ServerResponse,
  pathAfterVmui: string,
  opts: ServeUiOptions = {},
): Promise<void> {
  const root = resolve(opts.root ?? uiDistDir);
  if (req.method !== "GET" && req.method !== "HEAD") {
    plain(res, 405, `method ${req.method ?? ""} not allowed; use GET`, { allow: "GET, HEAD" });
    return;
  }
  const url = req.url ?? "/";
  const qpos = url.indexOf("?");
  const pathname = qpos >= 0 ? url.slice(0, qpos) : url;
  if ((pathAfterVmui === "" || pathAfterVmui.startsWith("?")) && !pathname.endsWith("/")) {
    // Relative asset URLs need the trailing slash: …/vmui → …/vmui/.
    plain(res, 301, "moved", { location: pathname + "/" + (qpos >= 0 ? url.slice(qpos) : "") });
    return;
  }
  const file = resolveUiPath(root, pathAfterVmui);
  if (file === undefined) {
    plain(res, 400, `bad UI path ${JSON.stringify(pathAfterVmui)}`);
    return;
  }
  let body: Buffer;
  let mtime: Date;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new Error("not a file");
    mtime = st.mtime;
    body = await readFile(file);
  } catch {
    if (file === join(root, "index.html")) {
      plain(res, 503, `UI is not built: ${file} is missing; run pnpm --filter @strata/ui build`);
    } else {
      plain(res, 404, `no such UI file ${JSON.stringify(pathAfterVmui)}`);
    }
    return;
  }
  const etag = `"${body.length.toString(16)}-${mtime.getTime().toString(16)}"`;
  const immutable = file.startsWith(join(root, "assets") + sep);
  const headers: Record<string, string> = {
    "content-type": contentTypeOf(file),
    "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache",
    etag,
    "last-modified": mtime.toUTCString(),
    "x-content-type-options": "nosniff",
  };
  if (req.headers["if-none-match"] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  headers["content-length"] = String(body.length);
  res.writeHead(200, headers);
  res.end(req.method === "HEAD" ? undefined : body);
}
