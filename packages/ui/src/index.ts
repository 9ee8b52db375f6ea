// Node entry of @strata/ui: where the built web UI lives and a dependency-free handler that
// serves it. select mounts it at /select/<tenant>/vmui/ (DESIGN.md §2):
//
//   if (rest.startsWith("vmui")) return serveUi(req, res, rest.slice("vmui".length));
//
// The browser code lives in src/app and is built by Vite into dist/app (see package.json).
export { uiDistDir, serveUi, resolveUiPath, contentTypeOf } from "./serve.js";
export type { ServeUiOptions } from "./serve.js";
