// dist/main.js as one esbuild bundle (../../build-service.mjs).
import { build } from "esbuild";
import { bundleService } from "../../build-service.mjs";

// A native addon: resolved from here at run time (loaded only by PromQL's limitk in -test).
await bundleService(build, { external: ["@node-rs/xxhash"] });
