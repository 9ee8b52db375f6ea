import { BadDataError } from "@strata/core";

/**
 * Request paths as the proxy sees them: percent-decoded once, then cleaned the way Go's
 * path.Clean cleans them (vmauth routes on exactly that), so `%2e%2e`, `%2F`, `//` and `..`
 * cannot reach a path other than the one routing matched. The forwarded path is that clean path
 * re-encoded: a backend that decodes it once gets the same path back, with no dot segments, no
 * encoded slashes and every `%` escaped as `%25` (so `%252e%252e` stays literal text).
 */

export interface RequestTarget {
  /** Decoded and cleaned; "" for the root (vmauth's convention), else starts with "/". */
  readonly path: string;
  /** The raw query string without the `?` ("" when absent). */
  readonly query: string;
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/** Decodes %XX escapes; throws naming the position of a bad escape or of invalid UTF-8. */
export function decodePath(raw: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const hex = raw.slice(i + 1, i + 3);
      if (!HEX.test(hex)) throw new BadDataError(`invalid percent-encoding ${JSON.stringify(raw.slice(i, i + 3))} at byte ${i} of the request path`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      for (const b of Buffer.from(raw[i]!, "utf8")) bytes.push(b);
    }
  }
  let s: string;
  try {
    s = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    throw new BadDataError("the request path is not valid UTF-8 once percent-decoded");
  }
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) throw new BadDataError(`control character 0x${c.toString(16).padStart(2, "0")} in the request path`);
  }
  return s;
}

/** Go's path.Clean: one slash between elements, no `.` elements, `..` resolved (never above the root). */
export function cleanPath(p: string): string {
  if (p === "") return ".";
  const rooted = p.startsWith("/");
  const out: string[] = [];
  for (const seg of p.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!rooted) out.push("..");
      continue;
    }
    out.push(seg);
  }
  const joined = out.join("/");
  if (rooted) return `/${joined}`;
  return joined === "" ? "." : joined;
}

/**
 * Splits a request target (`req.url`: origin-form, or absolute-form from proxies) into the
 * normalized path and the raw query, as vmauth's normalizeURL does: cleaned, the trailing slash
 * kept when the request had one, rooted, and "/" becoming "".
 */
export function parseRequestTarget(url: string): RequestTarget {
  let target = url;
  const abs = /^https?:\/\/[^/?#]*/i.exec(target);
  if (abs) target = target.slice(abs[0].length) || "/";
  if (!target.startsWith("/")) throw new BadDataError(`request target ${JSON.stringify(url.slice(0, 100))} does not start with /`);
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  const decoded = decodePath(rawPath);
  let path = cleanPath(decoded);
  if (!path.endsWith("/") && decoded.endsWith("/")) path += "/";
  if (!path.startsWith("/")) path = `/${path}`;
  if (path === "/") path = "";
  return { path, query };
}

/** %XX-escapes (UTF-8, uppercase hex) every character that `keep` does not match. */
function percentEncode(s: string, keep: RegExp): string {
  let out = "";
  for (const ch of s) {
    if (keep.test(ch)) {
      out += ch;
      continue;
    }
    for (const b of Buffer.from(ch, "utf8")) out += `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

// Characters Go's URL.EscapedPath leaves as they are.
const PATH_KEEP = /[A-Za-z0-9\-._~!$&'()*+,;=:@/]/;

/** Percent-encodes a decoded path for the request line. */
export function encodePath(p: string): string {
  return percentEncode(p, PATH_KEEP);
}

// Query bytes passed through untouched; others (spaces, quotes, non-ASCII) are escaped so the
// request line stays valid. `%` is kept: the query is forwarded still encoded.
const QUERY_KEEP = /[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]/;

export function encodeQuery(q: string): string {
  return percentEncode(q, QUERY_KEEP);
}

/** Drops the first `parts` `/`-delimited elements of a path (vmauth's drop_src_path_prefix_parts). */
export function dropPrefixParts(p: string, parts: number): string {
  let path = p;
  for (let n = parts; n > 0; n--) {
    path = path.startsWith("/") ? path.slice(1) : path;
    const i = path.indexOf("/");
    if (i < 0) return "";
    path = path.slice(i);
  }
  return path;
}
