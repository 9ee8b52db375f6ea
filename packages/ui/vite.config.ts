import { defineConfig } from "vite";

// base "./": every asset URL is relative, so the same build works under any
// /select/<tenant>/vmui/ prefix. No CDN: everything is bundled into dist/app.
// `pnpm --filter @strata/ui dev` serves the sources and forwards the API to a running select
// (STRATA_SELECT, default http://127.0.0.1:8481); open the dev server root (it talks to tenant 0).
const select = process.env["STRATA_SELECT"] ?? "http://127.0.0.1:8481";

export default defineConfig({
  root: "src/app",
  base: "./",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  server: {
    proxy: { "^/select/[^/]+/prometheus/": { target: select, changeOrigin: true } },
  },
  build: {
    outDir: "../../dist/app",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
});
