// Build-stage helper of the Dockerfile: narrows the root package.json's
// workspaces to the services and the workspace packages they need at run time
// (their "dependencies", transitively), and deletes every other workspace
// folder (tests, tools, clients). `npm prune --omit=dev` then keeps only what
// the services run on. Usage: node deploy/docker/runtime-workspaces.mjs [root]
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = process.argv[2] ?? '.';
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const rootPkg = readJson(join(root, 'package.json'));

const workspaceDirs = rootPkg.workspaces.flatMap((pattern) => {
  if (!pattern.endsWith('/*')) return [pattern];
  const base = pattern.slice(0, -2);
  if (!existsSync(join(root, base))) return [];
  return readdirSync(join(root, base))
    .map((d) => `${base}/${d}`)
    .filter((d) => statSync(join(root, d)).isDirectory());
});
const byName = new Map();
for (const dir of workspaceDirs) {
  if (existsSync(join(root, dir, 'package.json'))) byName.set(readJson(join(root, dir, 'package.json')).name, dir);
}

const keep = new Set();
const queue = [...byName].filter(([, dir]) => dir.startsWith('services/')).map(([name]) => name);
while (queue.length > 0) {
  const name = queue.pop();
  if (keep.has(name)) continue;
  keep.add(name);
  const deps = readJson(join(root, byName.get(name), 'package.json')).dependencies ?? {};
  for (const dep of Object.keys(deps)) if (byName.has(dep)) queue.push(dep);
}

rootPkg.workspaces = [...keep].map((name) => byName.get(name)).sort();
writeFileSync(join(root, 'package.json'), `${JSON.stringify(rootPkg, null, 2)}\n`);
for (const [name, dir] of byName) if (!keep.has(name)) rmSync(join(root, dir), { recursive: true, force: true });
console.log(`runtime workspaces: ${rootPkg.workspaces.join(' ')}`);
