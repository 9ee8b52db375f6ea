import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isBuilt, serviceMain } from "./lib/procs.js";

/**
 * `pnpm build` bundles these services into one ES module each (services/bundle.mjs): an idle
 * process takes ~18 MiB less RSS than with ~300 modules (docs/benchmarks.md). The bundle may
 * import only node: builtins, the native addons and @strata/ui (which finds its files beside
 * itself) — a workspace package imported at run time would mean a second copy of its modules.
 */
const bundled = ["storage", "insert", "select", "alert", "agent"] as const;
const EXTERNAL = new Set(["@node-rs/xxhash", "lz4-napi", "snappy", "@strata/ui"]);

/**
 * Module specifiers of an ES module's static and dynamic imports, and of its require() calls of
 * workspace packages (bundled CommonJS code requires node builtins; some dependencies also hold
 * require("…") inside the source text of code they generate, which is not a load).
 */
function specifiers(code: string): string[] {
  const imports = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s*)["']([@.\w][^"'\s]*)["']/g;
  const requires = /\brequire\s*\(\s*["'](@strata\/[^"'\s]+|\.{1,2}\/[^"'\s]+)["']/g;
  return [...code.matchAll(imports), ...code.matchAll(requires)].map((m) => m[1]!);
}

describe.skipIf(!bundled.every(isBuilt))("service bundles", () => {
  it.each(bundled)("strata-%s: dist/main.js imports only builtins and the native addons", (name) => {
    const outside = specifiers(readFileSync(serviceMain(name), "utf8")).filter((s) => !s.startsWith("node:") && !EXTERNAL.has(s));
    expect(outside).toEqual([]);
  });

  // The agent leaves the cluster's lz4 code out of its bundle (services/bundle.mjs --unused).
  it.each(bundled.filter((n) => n !== "alert"))("strata-%s: the addons it may load resolve from the service", (name) => {
    for (const addon of name === "agent" ? ["@node-rs/xxhash", "snappy"] : ["@node-rs/xxhash", "lz4-napi", "snappy"]) {
      expect(existsSync(join(serviceMain(name), "../../node_modules", addon, "package.json")), addon).toBe(true);
    }
  });

  it("strata-select: the decode worker is bundled beside main.js, where DecodePool loads it", () => {
    const worker = join(serviceMain("select"), "../decode-worker.js");
    expect(existsSync(worker)).toBe(true);
    expect(specifiers(readFileSync(worker, "utf8")).filter((s) => s.startsWith("@strata/") || s.startsWith("."))).toEqual([]);
  });
});
