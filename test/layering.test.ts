import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const script = join(import.meta.dirname, "tools", "check-layering.mjs");
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

type Tree = Record<string, { deps?: string[]; src?: string }>;

function makeTree(tree: Tree): string {
  const root = mkdtempSync(join(tmpdir(), "strata-layering-"));
  dirs.push(root);
  for (const [path, { deps = [], src = "" }] of Object.entries(tree)) {
    const [kind, dir] = path.split("/") as [string, string];
    const name = kind === "packages" ? `@strata/${dir}` : `@strata/service-${dir}`;
    mkdirSync(join(root, kind, dir, "src"), { recursive: true });
    const dependencies = Object.fromEntries(deps.map((d) => [d, "workspace:*"]));
    writeFileSync(join(root, kind, dir, "package.json"), JSON.stringify({ name, dependencies }));
    writeFileSync(join(root, kind, dir, "src", "index.ts"), src);
  }
  return root;
}

const run = (root: string) => spawnSync(process.execPath, [script, root], { encoding: "utf8" });

describe("layering check", () => {
  it("passes on this repository", () => {
    expect(execFileSync(process.execPath, [script], { encoding: "utf8" })).toMatch(/layering: ok/);
  });

  it.each([
    [
      "a package importing a service",
      { "packages/a": { deps: ["@strata/service-x"] }, "services/x": {} },
      /depends on service @strata\/service-x/,
    ],
    [
      "a service importing another service",
      { "services/x": { src: 'import "@strata/service-y";', deps: ["@strata/service-y"] }, "services/y": {} },
      /depends on service @strata\/service-y/,
    ],
    [
      "a cycle between packages",
      { "packages/a": { deps: ["@strata/b"] }, "packages/b": { deps: ["@strata/a"] } },
      /dependency cycle: @strata\/a -> @strata\/b -> @strata\/a/,
    ],
    [
      "an undeclared import",
      { "packages/a": { src: 'import { x } from "@strata/b";' }, "packages/b": {} },
      /imports @strata\/b without declaring it/,
    ],
    [
      "an import of a service by relative path",
      { "packages/a": { src: 'import "../../services/x/src/app.js";' }, "services/x": {} },
      /imports a service by path/,
    ],
  ] as const)("fails on %s", (_what, tree, msg) => {
    const r = run(makeTree(tree as Tree));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(msg);
  });

  it("accepts a clean tree", () => {
    const r = run(makeTree({ "packages/a": {}, "packages/b": { deps: ["@strata/a"], src: 'import "@strata/a";' }, "services/x": { deps: ["@strata/b"] } }));
    expect(r.status).toBe(0);
  });
});
