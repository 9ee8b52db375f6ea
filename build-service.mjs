// Bundles a service into one file, dist/main.js (run from the service's directory, over tsc's
// output of src/main.ts; tsc still type-checks and emits dist/app.js for the tests). One ES module
// instead of ~300 cuts the process' RSS by ~10 MB: fewer module records, source strings and loader
// paths touched (docs/benchmarks.md, "## Alert"). The workspace packages are read from their
// sources. `build`: esbuild's, from the service's own devDependencies; `external`: packages
// resolved from the service's node_modules at run time (native addons); `plugins`: esbuild's.
export async function bundleService(build, { external, plugins = [] }) {
  await build({
    entryPoints: ["src/main.ts"],
    outfile: "dist/main.js",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["source"],
    external,
    plugins,
    // CommonJS dependencies (fastify, pino, yaml) call require() for node: builtins.
    banner: { js: 'import { createRequire as strataCreateRequire } from "node:module";\nconst require = strataCreateRequire(import.meta.url);' },
    // V8 keeps a module's source text in the heap (lazy compilation, Function.prototype.toString):
    // without whitespace the 2.5 MB bundle is 1.7 MB, −3 MB RSS. Names stay, so stack traces read.
    minifyWhitespace: true,
    legalComments: "none",
    logLevel: "warning",
  });
}
