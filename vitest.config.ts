import { readdirSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { defineConfig } from "vitest/config";

// Tests import workspace packages by name (`@strata/core`) so they only reach the public
// API; the alias points those names at the TypeScript sources, so unit tests need no build.
const root = import.meta.dirname;
const alias: Record<string, string> = {};
for (const dir of readdirSync(join(root, "packages"))) {
  const entry = join(root, "packages", dir, "src", "index.ts");
  if (existsSync(entry)) alias[`@strata/${dir}`] = resolve(entry);
}

export default defineConfig({
  resolve: { alias },
  test: {
    include: [
      "packages/*/test/**/*.test.{ts,tsx}",
      "services/*/test/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
    pool: "forks",
  },
});
