// The whole system as `npm start` runs it (scripts/start.mjs), for the suites
// that test it from outside (tests/system, tests/adversary): on free ports
// with a private database, Redis prefix and NATS prefix from createTestEnv,
// so it runs beside other engineers' systems and test runs. Also the helpers
// to run a node script (the CLI, say) in the repository root and read what it
// printed.
import { spawn, type ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestEnv } from './index.js';
import { freePort } from './ports.js';

/** The repository root (this file is packages/testkit/{src,dist}/system.*; realpath in case it is reached through node_modules). */
export const repoRoot = join(realpathSync(import.meta.dirname), '..', '..', '..');

/** The built bil CLI (apps/cli, after `turbo run build`). */
export const bilMain = join(repoRoot, 'apps', 'cli', 'dist', 'main.js');

export interface Run {
  child: ChildProcess;
  /** stdout and stderr as they came. */
  output: () => string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/**
 * Spawns `node args…` (in the repository root unless `cwd` says otherwise)
 * with extra environment variables; `undefined` removes one. With `input`,
 * writes it to stdin and ends stdin.
 */
export function run(args: string[], extraEnv: Record<string, string | undefined>, options: { input?: string; cwd?: string } = {}): Run {
  const env: Record<string, string | undefined> = { ...process.env, ...extraEnv };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const child = spawn(process.execPath, args, { cwd: options.cwd ?? repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c;
    stdout += c;
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c;
    stderr += c;
  });
  if (options.input !== undefined) child.stdin!.end(options.input);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Resolves once `r` has printed `text` (stdout or stderr); fails if it exits first or `timeoutMs` passes. */
export async function waitFor(r: Run, text: string | RegExp, timeoutMs: number, what = 'output'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const has = () => (typeof text === 'string' ? r.output().includes(text) : text.test(r.output()));
  while (!has()) {
    if (r.child.exitCode !== null) throw new Error(`${what}: exited (${r.child.exitCode}) before printing ${String(text)}:\n${r.output()}`);
    if (Date.now() > deadline) throw new Error(`${what}: no ${String(text)} within ${timeoutMs} ms:\n${r.output()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/**
 * Polls `check` every `everyMs` until it returns a value other than
 * undefined/false, or fails after `timeoutMs`. Unlike `eventually`, an error
 * thrown by `check` fails at once.
 */
export async function waitUntil<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The environment variables naming every service and metrics port start.mjs runs. */
export const SERVICE_PORTS = [
  'BIL_GATEWAY_PORT',
  'GATEWAY_METRICS_PORT',
  'IDENTITY_GRPC_PORT',
  'IDENTITY_METRICS_PORT',
  'CHAT_GRPC_PORT',
  'CHAT_METRICS_PORT',
  'DIGEST_GRPC_PORT',
  'DIGEST_METRICS_PORT',
  'DIGEST_WORKER_METRICS_PORT',
  'DELIVERY_WS_PORT',
  'DELIVERY_METRICS_PORT',
] as const;

export type Ports = Record<(typeof SERVICE_PORTS)[number], string>;

/** A free port for every service and metrics endpoint start.mjs runs. */
export async function freePorts(): Promise<Ports> {
  const ports: Partial<Ports> = {};
  for (const n of SERVICE_PORTS) ports[n] = String(await freePort());
  return ports as Ports;
}

/**
 * The bil config directory of a test system: where its start.mjs writes
 * servers.json (the digest service key for its gateway), instead of the
 * user's own ~/.config/bil. Removed by `env.cleanup()`.
 */
export function systemConfigDir(env: Pick<TestEnv, 'id'>): string {
  return join(tmpdir(), `bil-config-${env.id}`);
}

/** The environment start.mjs needs for a private system on `env` and `ports`. */
export function systemEnv(env: TestEnv, ports: Ports): Record<string, string | undefined> {
  return {
    BIL_CONFIG_DIR: systemConfigDir(env),
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    REDIS_PREFIX: env.redisPrefix,
    NATS_URL: env.natsUrl,
    NATS_SUBJECT_PREFIX: env.natsPrefix,
    ...ports,
    // The built-in summariser, whatever the machine's environment says.
    OPENAI_API_KEY: undefined,
    OPENAI_BASE_URL: undefined,
  };
}

/**
 * Extra settings for a system that many test clients use at once on a loaded
 * machine. Every test registers and signs in from 127.0.0.1, so each suite
 * names the auth rate limits its number of sign-ups needs.
 */
export function testSettings(authRateLimit: { perIp: number; perUsername: number }): Record<string, string> {
  return {
    RATE_LIMIT_AUTH_PER_IP: String(authRateLimit.perIp),
    RATE_LIMIT_AUTH_PER_USERNAME: String(authRateLimit.perUsername),
    // Generous deadlines: a loaded 2-core CI machine can take seconds per scrypt-heavy call.
    IDENTITY_TIMEOUT_MS: '30000',
    CHAT_TIMEOUT_MS: '30000',
    DIGEST_TIMEOUT_MS: '30000',
  };
}

/** Runs scripts/start.mjs (LOG_LEVEL=warn unless `env` says otherwise, stdin ended) and resolves once it says the system is up. */
export async function startSystem(env: Record<string, string | undefined>, timeoutMs = 180_000): Promise<Run> {
  const r = run(['scripts/start.mjs'], { LOG_LEVEL: 'warn', ...env });
  r.child.stdin!.end();
  try {
    await waitFor(r, 'bil-message is up', timeoutMs, 'npm start');
  } catch (err) {
    await stopSystem(r); // start.mjs stops the services it started
    throw err;
  }
  return r;
}

/** Ctrl-C, as a person stops `npm start` (SIGKILL after 30 s); resolves with the exit code. */
export async function stopSystem(r: Run): Promise<number | null> {
  if (r.child.exitCode !== null) return r.child.exitCode;
  r.child.kill('SIGINT');
  const kill = setTimeout(() => r.child.kill('SIGKILL'), 30_000);
  const code = await r.exited;
  clearTimeout(kill);
  return code;
}
