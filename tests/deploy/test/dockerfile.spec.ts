// The Dockerfile and .dockerignore, checked without Docker: dockerfile-utils'
// linter, then what the image must be (multi-stage, Node 20, npm ci with the
// lock file and no install scripts, non-root, every COPY source present in the
// build context), and the build helper that trims the workspaces, run on a
// copy of the manifests.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerfileParser, type Instruction, ModifiableInstruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { describe, expect, inject, it } from 'vitest';
import { type K8s, Manifests, components, entrypointRuns, parseManifests, read, repo } from './support.js';

const text = read('Dockerfile');
const dockerfile = DockerfileParser.parse(text);
const instructions = dockerfile.getInstructions();
const rootPkg = JSON.parse(read('package.json')) as { packageManager: string; engines: { node: string }; workspaces: string[] };

/** The build arguments declared before the first FROM, with their defaults. */
const initialArgs = Object.fromEntries(dockerfile.getInitialARGs().map((a) => [a.getProperty()!.getName(), a.getProperty()!.getValue() ?? '']));
const expand = (s: string) => s.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_m, name: string) => initialArgs[name] ?? '');

/** Instructions of each stage, by stage name. */
const stages = dockerfile.getFROMs().map((from, i, froms) => {
  const start = from.getRange().start.line;
  const end = i + 1 < froms.length ? froms[i + 1]!.getRange().start.line : Number.POSITIVE_INFINITY;
  return {
    name: from.getBuildStage(),
    image: expand(from.getImage() ?? ''),
    instructions: instructions.filter((ins) => ins.getRange().start.line > start && ins.getRange().start.line < end),
  };
});
const finalStage = stages.at(-1)!;
const args = (ins: Instruction) => ins.getArguments().map((a) => a.getValue());
const flag = (ins: Instruction, name: string) => (ins instanceof ModifiableInstruction ? ins.getFlags().find((f) => f.getName() === name)?.getValue() : undefined);
const runs = (stage: (typeof stages)[number]) => stage.instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');

/** .dockerignore as Docker reads it: glob patterns on paths from the context root; a match on a folder covers its contents. */
const ignore = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'))
  .map((p) => {
    const negate = p.startsWith('!');
    const glob = p.replace(/^!/, '').replace(/^\//, '').replace(/\/$/, '');
    const re = glob
      .split(/(\*\*\/?|\*|\?)/)
      .map((part) => (part === '**/' ? '(?:.*/)?' : part === '**' ? '.*' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('');
    return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
  });
function ignored(path: string): boolean {
  let out = false;
  for (const rule of ignore) if (rule.re.test(path)) out = !rule.negate;
  return out;
}

describe('Dockerfile', () => {
  it('passes the dockerfile-utils linter', () => {
    const problems = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it('is multi-stage, every stage from a slim Node 20 image that package.json allows', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(new Set(stages.map((s) => s.name)).size, 'stage names are unique').toBe(stages.length);
    for (const s of stages) {
      expect(s.image, `stage ${s.name}`).toMatch(/^node:20(\.\d+)*-(bookworm-)?slim$/);
    }
    // The engines range of the root package.json admits Node 20.19 and later 20.x.
    expect(rootPkg.engines.node).toMatch(/>=20\.\d+/);
  });

  it('installs with npm ci from the lock file, with the packageManager npm, running no install script', () => {
    const build = stages.find((s) => runs(s).some((r) => /\bnpm ci\b/.test(r)));
    expect(build, 'a stage runs npm ci').toBeDefined();
    const ci = runs(build!).find((r) => /\bnpm ci\b/.test(r))!;
    expect(ci).toContain('--ignore-scripts');
    expect(runs(build!).some((r) => /\bnpm (install|i) (?!--global)/.test(r) && !/npm@/.test(r))).toBe(false);
    const npmVersion = build!.instructions.find((i) => i.getKeyword() === 'ARG' && args(i)[0]?.startsWith('NPM_VERSION='));
    expect(args(npmVersion!)[0]).toBe(`NPM_VERSION=${rootPkg.packageManager.replace(/^npm@/, '')}`);
    // The lock file reaches the install.
    expect(ignored('package-lock.json')).toBe(false);
  });

  it('builds every service with Turborepo', () => {
    const build = runs(stages.find((s) => runs(s).some((r) => r.includes('turbo run build')))!).find((r) => r.includes('turbo run build'))!;
    for (const dir of readdirSync(join(repo, 'services'))) {
      const name = (JSON.parse(read(`services/${dir}/package.json`)) as { name: string }).name;
      expect(build, name).toContain(`--filter=${name}`);
    }
  });

  it('builds the web client and puts its static files where the gateway serves them from (apps/web/dist)', () => {
    const build = runs(stages.find((s) => s.name === 'build')!);
    expect(build.find((r) => r.includes('turbo run build'))).toContain('--filter=@bil/web');
    const prune = build.findIndex((r) => r.includes('npm prune'));
    const aside = build.findIndex((r) => r.includes('mv apps/web/dist /web-dist'));
    const back = build.findIndex((r) => r.includes('mv /web-dist apps/web/dist'));
    expect(aside).toBeGreaterThanOrEqual(0);
    expect([aside < prune, back > prune]).toEqual([true, true]);
  });

  it('keeps the build output and the .proto files it loads at run time', () => {
    const trim = runs(stages.find((s) => s.name === 'build')!).find((r) => r.includes('npm prune'))!;
    expect(trim).toContain('--omit=dev');
    expect(trim).not.toMatch(/\bdist\b|proto\/bil\b|\bnode_modules\b(?! -prune)/);
  });

  it('runs as the non-root user 1000 (the chart and compose use the same)', () => {
    const user = finalStage.instructions.filter((i) => i.getKeyword() === 'USER').at(-1);
    expect(user, 'the final stage sets USER').toBeDefined();
    const [uid] = (args(user!)[0] ?? '').split(':');
    expect(uid === 'node' || Number(uid) > 0).toBe(true);
    expect(uid).toBe('1000');
  });

  it('copies only what the build context has (.dockerignore applied), and from earlier stages', () => {
    const names = new Set<string>();
    for (const s of stages) {
      for (const copy of s.instructions.filter((i) => i.getKeyword() === 'COPY' || i.getKeyword() === 'ADD')) {
        const from = flag(copy, 'from');
        const parts = args(copy).filter((a) => !a.startsWith('--'));
        const sources = parts.slice(0, -1);
        if (from) {
          expect(names.has(from), `COPY --from=${from} names an earlier stage`).toBe(true);
          continue;
        }
        for (const src of sources) {
          if (src === '.') continue;
          expect(existsSync(join(repo, src)), `COPY ${src} exists`).toBe(true);
          expect(ignored(src), `COPY ${src} is not in .dockerignore`).toBe(false);
        }
      }
      if (s.name) names.add(s.name);
    }
  });

  it("starts the entrypoint it copies, in exec form, and exposes every container port of the chart", () => {
    const entry = finalStage.instructions.find((i) => i.getKeyword() === 'ENTRYPOINT')!;
    const entrypoint = JSON.parse(entry.getArgumentsContent() ?? '') as string[];
    const copy = finalStage.instructions.find((i) => i.getKeyword() === 'COPY' && args(i).includes('deploy/docker/entrypoint.sh'))!;
    expect(args(copy).at(-1)).toBe(entrypoint[0]);
    expect(flag(copy, 'chmod')).toMatch(/^0?7[0-7]5$/);
    const cmd = JSON.parse(finalStage.instructions.find((i) => i.getKeyword() === 'CMD')!.getArgumentsContent() ?? '') as string[];
    expect(entrypointRuns(cmd).code, `CMD ${cmd.join(' ')} works`).toBe(0);

    const exposed = new Set(finalStage.instructions.filter((i) => i.getKeyword() === 'EXPOSE').flatMap((i) => args(i).map(Number)));
    const chart = new Manifests(parseManifests(inject('helm').template.default.stdout));
    for (const component of Object.keys(components)) {
      for (const p of chart.deployment(component).spec.template.spec.containers[0].ports as K8s[]) {
        expect(exposed.has(p.containerPort), `${component} ${p.name} ${p.containerPort}`).toBe(true);
      }
    }
  });

  it('the entrypoint prints its usage and refuses nothing silently', () => {
    const help = entrypointRuns(['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/digest-worker/);
    expect(help.runs).toEqual([]);
  });

  it('runs the digest service-key command that docs/deploy.md tells operators to run', () => {
    const r = entrypointRuns(['digest', 'service-key']);
    expect(r.code).toBe(0);
    expect(r.runs).toEqual([['services/digest/dist/main.js', 'service-key']]);
    expect(read('docs/deploy.md')).toContain('node services/digest/dist/main.js service-key');
  });
});

describe('.dockerignore', () => {
  it('keeps dependencies, build output, VCS data and local secrets out of the build context', () => {
    for (const p of ['node_modules', 'services/chat/node_modules', 'services/chat/dist', 'proto/gen', '.git', '.env', '.bil', '.turbo', 'services/chat/.turbo', 'packages/sdk/.test-results']) {
      expect(ignored(p), p).toBe(true);
    }
  });

  it('lets in every workspace manifest and source the build needs', () => {
    const paths = ['package.json', 'package-lock.json', '.npmrc', 'turbo.json', 'tsconfig.base.json', 'proto/bil', 'deploy/docker/entrypoint.sh', 'deploy/docker/runtime-workspaces.mjs'];
    for (const pattern of rootPkg.workspaces) {
      const dirs = pattern.endsWith('/*') && existsSync(join(repo, pattern.slice(0, -2))) ? readdirSync(join(repo, pattern.slice(0, -2))).map((d) => `${pattern.slice(0, -2)}/${d}`) : [pattern];
      for (const d of dirs) if (existsSync(join(repo, d, 'package.json'))) paths.push(`${d}/package.json`, `${d}/src`);
    }
    for (const p of paths) expect(ignored(p), p).toBe(false);
  });
});

describe('deploy/docker/runtime-workspaces.mjs', () => {
  it('keeps the services and the workspaces they depend on, and drops tests, tools and clients', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bil-workspaces-'));
    try {
      cpSync(join(repo, 'package.json'), join(dir, 'package.json'));
      const all: string[] = [];
      for (const pattern of rootPkg.workspaces) {
        const base = pattern.endsWith('/*') ? pattern.slice(0, -2) : undefined;
        const dirs = base ? (existsSync(join(repo, base)) ? readdirSync(join(repo, base)).map((d) => `${base}/${d}`) : []) : [pattern];
        for (const d of dirs) {
          if (!existsSync(join(repo, d, 'package.json'))) continue;
          mkdirSync(join(dir, d), { recursive: true });
          cpSync(join(repo, d, 'package.json'), join(dir, d, 'package.json'));
          all.push(d);
        }
      }
      const r = spawnSync(process.execPath, [join(repo, 'deploy/docker/runtime-workspaces.mjs'), dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const kept = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
      for (const d of all) expect(existsSync(join(dir, d)), d).toBe(kept.includes(d));
      for (const s of readdirSync(join(repo, 'services'))) expect(kept, s).toContain(`services/${s}`);
      expect(kept.filter((d) => d.startsWith('tests/') || d.startsWith('apps/'))).toEqual([]);
      const nameToDir = new Map(all.map((d) => [(JSON.parse(read(`${d}/package.json`)) as { name: string }).name, d]));
      for (const d of kept) {
        const deps = Object.keys((JSON.parse(read(`${d}/package.json`)) as { dependencies?: Record<string, string> }).dependencies ?? {});
        for (const dep of deps) if (nameToDir.has(dep)) expect(kept, `${d} needs ${dep}`).toContain(nameToDir.get(dep));
      }
      // Only what some service needs at run time: not the test kit.
      expect(kept).not.toContain('packages/testkit');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
