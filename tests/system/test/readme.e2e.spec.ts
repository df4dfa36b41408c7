// The README's commands can't rot: its CLI tour runs here exactly as written
// (a bash function stands in for `npx bil` so each line doesn't pay for npx;
// the link npx uses is checked once on its own), then its SDK example, against
// the system npm start runs (test/global-setup.ts). `npm ci && npm start` is
// start.e2e.spec.ts plus CI's install, `npm run demo` is demo.e2e.spec.ts,
// `npm test` is CI itself.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { repoRoot, run } from '@bil/testkit';

const url = inject('bilUrl');
const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'bil-readme-'));

/** The fenced block right after the marker comment. */
function block(marker: string): string {
  const at = readme.indexOf(`<!-- ${marker}`);
  expect(at, `README marker ${marker}`).toBeGreaterThan(-1);
  const m = /```\w*\n([\s\S]*?)```/.exec(readme.slice(at));
  return m![1]!;
}

afterAll(() => rmSync(work, { recursive: true, force: true }));

const shimNpx = `npx() { if [ "$1" = bil ]; then shift; node ${JSON.stringify(join(repoRoot, 'apps', 'cli', 'bin', 'bil.mjs'))} "$@"; else command npx "$@"; fi; }`;

/** Runs a script with bash -euo pipefail, as a newcomer's shell would (the tour's `&` and `wait` included). */
function bash(script: string, env: Record<string, string | undefined>): Promise<{ code: number | null; out: string }> {
  const full: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [k, v] of Object.entries(full)) if (v === undefined) delete full[k];
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', `${shimNpx}\n${script}`], { cwd: work, env: full, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (out += c));
    child.once('exit', (code) => resolve({ code, out }));
  });
}

describe('README', () => {
  const env = { BIL_URL: url, BIL_CONFIG_DIR: join(work, 'config'), NO_COLOR: undefined, BIL_PASSPHRASE: undefined, BIL_PASSWORD: undefined };

  it('`npx bil` is linked by the workspace install', () => {
    const r = spawnSync('npx', ['--no-install', 'bil', '--version'], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('runs the CLI tour as written', async () => {
    // npm start wrote the digest service key into the config directory; the tour's bil reads it there.
    mkdirSync(env.BIL_CONFIG_DIR, { recursive: true });
    copyFileSync(join(inject('bilConfigDir'), 'servers.json'), join(env.BIL_CONFIG_DIR, 'servers.json'));
    const tour = block('cli-tour');
    expect(tour).toContain('npx bil --profile alice register alice');
    const { code, out } = await bash(tour, env);
    expect(code, out).toBe(0);
    expect(out).toContain('Registered alice with device');
    expect(out).toContain('Registered bob with device');
    // Both sides print the same safety number.
    const rows = [...out.matchAll(/^ {4}(\d{5} \d{5} \d{5} \d{5})$/gm)].map((m) => m[1]);
    expect(rows).toHaveLength(6);
    expect(rows.slice(0, 3)).toEqual(rows.slice(3));
    expect(out).toContain('Sent to @bob');
    expect(out).toContain('1 unread in 1 chat');
    expect(out).toMatch(/alice: Hi Bob, this is end-to-end encrypted/);
    expect(out).toContain('Created group #Weekend');
    expect(out).toMatch(/\[[\d:]+\] #Weekend +alice: Who brings the tent\?/);
    expect(out).toMatch(/\[[\d:]+\] #Weekend +alice: I do!/);
    expect(out).toContain('Sent 25 messages to #Weekend');
    expect(out).toContain('"label": "#Weekend"');
    // On the device, then by the digest service, after saying what leaves the machine.
    expect(out.match(/summary of 25 messages \(built-in summariser/g)).toHaveLength(2);
    expect(out).toContain('nothing leaves it');
    expect(out).toMatch(/sealed to the digest service \(key [0-9a-f ]{39}, from .*servers\.json\)/);
    expect(out).not.toMatch(/\n\s+at .+:\d+:\d+/);
  }, 400_000);

  it('runs the SDK example, and Bob reads what it sent', async () => {
    const example = block('sdk-example');
    const dir = join(repoRoot, 'tests', 'system', '.test-results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'readme-hello.mjs');
    writeFileSync(file, example);
    const secrets = /export BIL_PASSPHRASE='([^']+)' BIL_PASSWORD='([^']+)'/.exec(block('cli-tour'))!;
    const secretEnv = { BIL_PASSPHRASE: secrets[1], BIL_PASSWORD: secrets[2] };
    const r = run([file], { ...env, ...secretEnv }, { cwd: work, input: '' });
    expect(await r.exited, r.output()).toBe(0);
    expect(r.output()).toMatch(/safety number: \d{5} \d{5}/);
    expect(r.output()).toContain('Hello from the SDK');
    const { code, out } = await bash('npx bil --profile bob history @carol', { ...env, ...secretEnv });
    expect(code, out).toBe(0);
    expect(out).toMatch(/carol: Hello from the SDK/);
  }, 120_000);
});
