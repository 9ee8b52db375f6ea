// dist/main.js as one esbuild bundle (../../build-service.mjs).
import { build } from "esbuild";
import { bundleService } from "../../build-service.mjs";

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

// Native addons: resolved from here at run time (xxhash is loaded on first use, which the agent
// never makes; snappy compresses every remote write request). lz4-napi's platform packages stay
// outside too, and are never reached (see unusedLibraries).
await bundleService(build, { external: ["@node-rs/xxhash", "snappy", "@antoniomuso/*", "*.node"], plugins: [unusedLibraries] });
