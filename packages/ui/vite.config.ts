import { defineConfig } from "vite";

// base "./": every asset URL is relative, so the same build works under any
// /select/<tenant>/vmui/ prefix. No CDN: everything is bundled into dist/app.
export default defineConfig({
  root: "src/app",
  base: "./",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "../../dist/app",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
});
