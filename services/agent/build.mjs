// Bundles the service into one file, dist/main.js (over tsc's output of src/main.ts; tsc still
// type-checks and emits dist/app.js for the tests). One ES module instead of ~300 cuts the
// process' RSS by ~10 MB: fewer module records, source strings and loader paths touched
// (docs/benchmarks.md, "## Alert"). The workspace packages are read from their sources.
import { build } from "esbuild";

// @strata/protocol's index re-exports the cluster RPC (rpc.ts, over @grpc/grpc-js) and
// @strata/encoding imports lz4-napi (the cluster's row batches): the agent calls neither. Both are
// CommonJS, so esbuild cannot tell that importing them does nothing the agent needs and would keep
// them (grpc-js and protobufjs ~550 KB of source, ~5 MB of heap once loaded; lz4-napi maps a
// native addon, +6.5 MB RSS): declaring them free of side effects lets the bundle drop them while
// nothing uses them. A use in the agent's code would still bundle them.
const unusedLibraries = {
  name: "unused-libraries",
  setup(b) {
    b.onResolve({ filter: /^(@grpc\/grpc-js|lz4-napi)$/ }, async (args) => {
      if (args.pluginData === "inner") return undefined;
      const r = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, pluginData: "inner" });
      return { ...r, sideEffects: false };
    });
  },
};

await build({
  entryPoints: ["src/main.ts"],
  outfile: "dist/main.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["source"],
  // Native addons: resolved from here at run time (xxhash is loaded on first use, which the agent
  // never makes; snappy compresses every remote write request). lz4-napi's platform packages stay
  // outside too, and are never reached (see unusedLibraries).
  external: ["@node-rs/xxhash", "snappy", "@antoniomuso/*", "*.node"],
  plugins: [unusedLibraries],
  // CommonJS dependencies (fastify, pino, yaml) call require() for node: builtins.
  banner: { js: 'import { createRequire as strataCreateRequire } from "node:module";\nconst require = strataCreateRequire(import.meta.url);' },
  // V8 keeps a module's source text in the heap (lazy compilation, Function.prototype.toString):
  // without whitespace the 2.5 MB bundle is 1.7 MB, −3 MB RSS. Names stay, so stack traces read.
  minifyWhitespace: true,
  legalComments: "none",
  logLevel: "warning",
});
