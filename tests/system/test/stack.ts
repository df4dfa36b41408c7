// The system as `npm start` runs it (scripts/start.mjs), on free ports and a
// private database, Redis prefix and NATS prefix from @bil/testkit, so it runs
// beside other engineers' systems and test runs. Shared by the global setup
// (one system for the CLI, demo and README tests) and the start script's own test.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort, type TestEnv } from '@bil/testkit';

export const root = join(import.meta.dirname, '..', '..', '..');

export { freePort };

export interface Run {
  child: ChildProcess;
  /** stdout and stderr as they came. */
  output: () => string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Spawns `node args…` in the repository root with extra environment variables. */
export function run(args: string[], extraEnv: Record<string, string | undefined>, options: { input?: string; cwd?: string } = {}): Run {
  const env: Record<string, string | undefined> = { ...process.env, ...extraEnv };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const child = spawn(process.execPath, args, { cwd: options.cwd ?? root, env, stdio: ['pipe', 'pipe', 'pipe'] });
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

export async function waitFor(r: Run, text: string | RegExp, timeoutMs: number, what = 'output'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const has = () => (typeof text === 'string' ? r.output().includes(text) : text.test(r.output()));
  while (!has()) {
    if (r.child.exitCode !== null) throw new Error(`${what}: exited (${r.child.exitCode}) before printing ${String(text)}:\n${r.output()}`);
    if (Date.now() > deadline) throw new Error(`${what}: no ${String(text)} within ${timeoutMs} ms:\n${r.output()}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

export type Ports = Record<string, string>;

/** A free port for every service and metrics endpoint start.mjs runs. */
export async function freePorts(): Promise<Ports> {
  const names = [
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
  const ports: Ports = {};
  for (const n of names) ports[n] = String(await freePort());
  return ports;
}

/** The environment start.mjs needs for a private system. */
export function systemEnv(env: TestEnv, ports: Ports): Record<string, string | undefined> {
  return {
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

/** Extra settings for a system that many test clients use at once on a loaded machine. */
export const testSettings: Record<string, string> = {
  // Every test registers and signs in from 127.0.0.1.
  RATE_LIMIT_AUTH_PER_IP: '1000',
  RATE_LIMIT_AUTH_PER_USERNAME: '100',
  // Generous deadlines: a loaded 2-core CI machine can take seconds per scrypt-heavy call.
  IDENTITY_TIMEOUT_MS: '30000',
  CHAT_TIMEOUT_MS: '30000',
  DIGEST_TIMEOUT_MS: '30000',
};

/** Runs scripts/start.mjs and resolves once it says the system is up. */
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

/** Ctrl-C, as a person stops `npm start`; resolves with the exit code. */
export async function stopSystem(r: Run): Promise<number | null> {
  if (r.child.exitCode !== null) return r.child.exitCode;
  r.child.kill('SIGINT');
  const kill = setTimeout(() => r.child.kill('SIGKILL'), 30_000);
  const code = await r.exited;
  clearTimeout(kill);
  return code;
}
