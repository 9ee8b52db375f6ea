// Bundles the service into one file, dist/main.js (over tsc's output of src/main.ts; tsc still
// type-checks and emits dist/app.js for the tests). One ES module instead of ~300 cuts the
// process' RSS by ~10 MB: fewer module records, source strings and loader paths touched
// (docs/benchmarks.md, "## Alert"). The workspace packages are read from their sources.
import { build } from "esbuild";

await build({
  entryPoints: ["src/main.ts"],
  outfile: "dist/main.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["source"],
  // A native addon: resolved from here at run time (loaded only by PromQL's limitk in -test).
  external: ["@node-rs/xxhash"],
  // CommonJS dependencies (fastify, pino, yaml) call require() for node: builtins.
  banner: { js: 'import { createRequire as strataCreateRequire } from "node:module";\nconst require = strataCreateRequire(import.meta.url);' },
  // V8 keeps a module's source text in the heap (lazy compilation, Function.prototype.toString):
  // without whitespace the 2.5 MB bundle is 1.7 MB, −3 MB RSS. Names stay, so stack traces read.
  minifyWhitespace: true,
  legalComments: "none",
  logLevel: "warning",
});
