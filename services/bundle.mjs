// Bundles a service into one ES module, dist/main.js, over tsc's output (tsc still type-checks
// and emits dist/app.js for the tests). Run from the service's directory: `node ../bundle.mjs
// [--unused=pkg,pkg] [name=path …]`, each name=path one more entry point bundled to
// dist/<name>.js (a worker thread's script, which a module loads by URL beside itself).
// --unused names CommonJS packages that the service imports through a workspace package's index
// but never calls (the agent: @grpc/grpc-js through @strata/protocol, lz4-napi through
// @strata/encoding): esbuild cannot tell that importing them does nothing, so they are declared
// free of side effects and left out of the bundle while nothing uses them (grpc-js and protobufjs
// are ~5 MB of heap once loaded, lz4-napi maps a native addon, +6.5 MB RSS). A use would keep
// them as a run-time import of the service's own dependency.
// One module instead of ~300 saves each process ~10 MiB of RSS (fewer module records, source
// strings and loader paths) and V8 keeps less source text in its heap (docs/benchmarks.md,
// "## Alert" and "### Idle processes and the storage peak"). The workspace packages are read
// from their sources (the `source` export condition).
import { build } from "esbuild";

const entryPoints = { main: "src/main.ts" };
const unused = [];
for (const arg of process.argv.slice(2)) {
  if (arg.startsWith("--unused=")) {
    unused.push(...arg.slice("--unused=".length).split(",").filter(Boolean));
    continue;
  }
  const [name, path] = arg.split("=");
  if (!name || !path) throw new Error(`bundle.mjs: want name=path, got ${arg}`);
  entryPoints[name] = path;
}

const unusedPackages = {
  name: "unused-packages",
  setup(b) {
    for (const name of unused) {
      // The package and its subpaths (@strata/protocol reaches into @grpc/grpc-js/build/src/…).
      const filter = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}(/.*)?$`);
      b.onResolve({ filter }, (args) => ({ path: args.path, external: true, sideEffects: false }));
    }
  },
};

await build({
  entryPoints,
  outdir: "dist",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["source"],
  // Native addons (napi-rs) pick their platform's binary at run time: resolved from the service's
  // own dependencies, so a service that uses one lists it in its package.json.
  // @strata/ui finds its built files (dist/app) beside its own module, so it stays a package.
  external: ["@node-rs/xxhash", "lz4-napi", "snappy", "@strata/ui"],
  // CommonJS dependencies (fastify, pino, grpc-js, yaml) call require() for node: builtins.
  banner: { js: 'import { createRequire as strataCreateRequire } from "node:module";\nconst require = strataCreateRequire(import.meta.url);' },
  // V8 keeps a module's source text in the heap (lazy compilation, Function.prototype.toString):
  // without whitespace a bundle is about a third smaller. Names stay, so stack traces read.
  minifyWhitespace: true,
  legalComments: "none",
  plugins: [unusedPackages],
  logLevel: "warning",
});
