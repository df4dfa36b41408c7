// The real system the adversary sits in front of: scripts/start.mjs (what
// `npm start` runs) on free ports with a private database, Redis prefix and
// NATS prefix from @bil/testkit, started once per suite (global-setup.ts).
// Also the process helpers the CLI tests use.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort, type TestEnv } from '@bil/testkit';

export const root = join(import.meta.dirname, '..', '..', '..', '..');
export const bilMain = join(root, 'apps', 'cli', 'dist', 'main.js');

export interface Run {
  child: ChildProcess;
  output: () => string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Spawns `node args…` in the repository root with extra environment variables (`undefined` removes one). */
export function run(args: string[], extraEnv: Record<string, string | undefined>, input?: string): Run {
  const env: Record<string, string | undefined> = { ...process.env, ...extraEnv };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => ((out += c), (stdout += c)));
  child.stderr!.on('data', (c: Buffer) => ((out += c), (stderr += c)));
  if (input !== undefined) child.stdin!.end(input);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Polls `check` every `everyMs` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitUntil<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

const SERVICE_PORTS = [
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
];

export interface System {
  /** The honest gateway, e.g. http://127.0.0.1:23456. Tests talk to a proxy in front of it. */
  gatewayUrl: string;
  /** The system's private database (each service in its own schema: chat.*, identity.*). */
  databaseUrl: string;
  stop(): Promise<void>;
}

/** Starts the whole system with scripts/start.mjs on `env` and resolves once it is up. */
export async function startSystem(env: TestEnv, timeoutMs = 180_000): Promise<System> {
  const ports: Record<string, string> = {};
  for (const name of SERVICE_PORTS) ports[name] = String(await freePort());
  const r = run(['scripts/start.mjs'], {
    LOG_LEVEL: 'warn',
    DATABASE_URL: env.databaseUrl,
    REDIS_URL: env.redisUrl,
    REDIS_PREFIX: env.redisPrefix,
    NATS_URL: env.natsUrl,
    NATS_SUBJECT_PREFIX: env.natsPrefix,
    ...ports,
    // Every test registers and signs in from 127.0.0.1; a loaded 2-core machine is slow at scrypt.
    RATE_LIMIT_AUTH_PER_IP: '10000',
    RATE_LIMIT_AUTH_PER_USERNAME: '1000',
    IDENTITY_TIMEOUT_MS: '30000',
    CHAT_TIMEOUT_MS: '30000',
    DIGEST_TIMEOUT_MS: '30000',
    OPENAI_API_KEY: undefined,
    OPENAI_BASE_URL: undefined,
  });
  r.child.stdin!.end();
  const stop = async () => {
    if (r.child.exitCode !== null) return;
    r.child.kill('SIGINT'); // start.mjs stops the services it started
    const kill = setTimeout(() => r.child.kill('SIGKILL'), 30_000);
    await r.exited;
    clearTimeout(kill);
  };
  try {
    await waitUntil('the system to start', () => {
      if (r.child.exitCode !== null) throw new Error(`scripts/start.mjs exited (${r.child.exitCode}):\n${r.output()}`);
      return r.output().includes('bil-message is up');
    }, timeoutMs, 200);
  } catch (err) {
    await stop();
    throw err;
  }
  return { gatewayUrl: `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`, databaseUrl: env.databaseUrl, stop };
}
