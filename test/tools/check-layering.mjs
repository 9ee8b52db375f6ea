#!/usr/bin/env node
// Layering check (DESIGN.md §3): packages never import services, services never import other
// services, and the package dependency graph has no cycles. Reads package.json dependencies and
// every import specifier in src/, so an undeclared import of a workspace package also fails.
import { readdirSync, readFileSync, existsSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = process.argv[2] ?? new URL("../..", import.meta.url).pathname;
const problems = [];

function workspaceUnits(kind) {
  const dir = join(root, kind);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, "package.json")))
    .map((d) => {
      const pkg = JSON.parse(readFileSync(join(dir, d, "package.json"), "utf8"));
      return { kind, dir: join(dir, d), name: pkg.name, pkg };
    });
}

function* sourceFiles(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    if (entry === "node_modules" || entry === "dist") continue;
    const p = join(dir, entry);
    if (statSync(p).isDirectory()) yield* sourceFiles(p);
    else if (/\.(ts|tsx|mts|js|mjs)$/.test(entry)) yield p;
  }
}

const units = [...workspaceUnits("packages"), ...workspaceUnits("services")];
const byName = new Map(units.map((u) => [u.name, u]));
const importRe = /(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\s*\(?\s*["']([^"']+)["']/g;

const edges = new Map();
for (const u of units) {
  const deps = new Set();
  for (const field of ["dependencies", "devDependencies", "peerDependencies"]) {
    for (const dep of Object.keys(u.pkg[field] ?? {})) if (byName.has(dep)) deps.add(dep);
  }
  for (const file of sourceFiles(join(u.dir, "src"))) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(importRe)) {
      const spec = m[1] ?? m[2];
      const rel = relative(root, file);
      if (spec.includes("/services/") || spec.startsWith("services/")) {
        problems.push(`${rel}: imports a service by path (${spec})`);
      }
      const name = spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0];
      const target = byName.get(name);
      if (!target || target === u) continue;
      deps.add(name);
      if (!(u.pkg.dependencies ?? {})[name] && !(u.pkg.devDependencies ?? {})[name]) {
        problems.push(`${rel}: imports ${name} without declaring it in package.json`);
      }
    }
  }
  for (const dep of deps) {
    const target = byName.get(dep);
    if (target.kind === "services") {
      problems.push(`${u.name} (${u.kind}) depends on service ${dep}: no package or service may import a service`);
    }
  }
  edges.set(u.name, deps);
}

// Cycle detection: depth-first search with colours.
const colour = new Map();
const stack = [];
function visit(name) {
  colour.set(name, 1);
  stack.push(name);
  for (const dep of edges.get(name) ?? []) {
    const c = colour.get(dep) ?? 0;
    if (c === 1) problems.push(`dependency cycle: ${[...stack.slice(stack.indexOf(dep)), dep].join(" -> ")}`);
    else if (c === 0) visit(dep);
  }
  stack.pop();
  colour.set(name, 2);
}
for (const name of edges.keys()) if (!colour.get(name)) visit(name);

if (problems.length > 0) {
  for (const p of problems) console.error(`layering: ${p}`);
  process.exit(1);
}
console.log(`layering: ok (${units.length} workspace units, no service imports, no cycles)`);
