// Private redis-server, nats-server (JetStream, own store) and PostgreSQL
// processes for outage tests: each on a free port of its own, stoppable and
// restartable on that same port (the clients under test reconnect to the same
// URL), removed with their files by cleanup(). Never touches the shared local
// servers. PostgreSQL refuses to run as root: under root, initdb and postgres
// run as the `postgres` user (its uid/gid), with the data directory chowned.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestEnv } from './index.js';
import { freePort } from './ports.js';

export type ServerKind = 'redis' | 'nats' | 'postgres';

/** How stop() ends the process: `graceful` (SIGTERM; PostgreSQL: fast shutdown) or `kill` (SIGKILL; PostgreSQL: immediate shutdown, as a crash). */
export type StopMode = 'graceful' | 'kill';

export interface ManagedServer {
  readonly kind: ServerKind;
  readonly port: number;
  /** Client URL: redis://127.0.0.1:P/0, nats://127.0.0.1:P, postgres://postgres@127.0.0.1:P/postgres. */
  readonly url: string;
  /** Directory holding the server's files and log (server.log). */
  readonly dir: string;
  readonly running: boolean;
  /** Stops the process and waits for it to exit; a stopped server is a no-op. */
  stop(mode?: StopMode): Promise<void>;
  /** Starts it again on the same port (same data) and waits until it accepts clients. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(mode?: StopMode): Promise<void>;
  /** The last lines of the server's log (for failure messages). */
  logTail(lines?: number): string;
  /** Stops the process and removes its directory. */
  cleanup(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A test run that dies leaves no orphan servers behind.
    process.once('exit', () => {
      for (const c of live) {
        try {
          c.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    });
  }
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.setTimeout(500);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Spec {
  kind: ServerKind;
  port: number;
  dir: string;
  url: string;
  command: string;
  args: string[];
  uid?: number;
  gid?: number;
  /** Signal per stop mode. */
  signals: Record<StopMode, NodeJS.Signals>;
  ready(port: number): Promise<boolean>;
}

class Managed implements ManagedServer {
  private child: ChildProcess | undefined;
  constructor(private readonly spec: Spec) {}
  get kind() {
    return this.spec.kind;
  }
  get port() {
    return this.spec.port;
  }
  get url() {
    return this.spec.url;
  }
  get dir() {
    return this.spec.dir;
  }
  get running() {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const log = openSync(join(this.spec.dir, 'server.log'), 'a');
    if (this.spec.uid !== undefined) chownSync(join(this.spec.dir, 'server.log'), this.spec.uid, this.spec.gid ?? this.spec.uid);
    const child = spawn(this.spec.command, this.spec.args, {
      stdio: ['ignore', log, log],
      uid: this.spec.uid,
      gid: this.spec.gid,
      cwd: this.spec.dir,
    });
    closeSync(log);
    track(child);
    this.child = child;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.spec.kind} on port ${this.port} exited at start:\n${this.logTail()}`);
      if (await this.spec.ready(this.port)) return;
      await sleep(50);
    }
    throw new Error(`${this.spec.kind} on port ${this.port} not ready within 30 s:\n${this.logTail()}`);
  }

  async stop(mode: StopMode = 'graceful'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(this.spec.signals[mode]);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
    // The port must be free again before a restart binds it (no TIME_WAIT issue: servers set SO_REUSEADDR).
    for (let i = 0; i < 100 && (await tcpOpen(this.port)); i++) await sleep(50);
  }

  async restart(mode: StopMode = 'graceful'): Promise<void> {
    await this.stop(mode);
    await this.start();
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(join(this.spec.dir, 'server.log'), 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async cleanup(): Promise<void> {
    await this.stop('kill');
    rmSync(this.spec.dir, { recursive: true, force: true });
  }
}

async function launch(spec: Spec): Promise<ManagedServer> {
  const server = new Managed(spec);
  try {
    await server.start();
  } catch (err) {
    await server.cleanup();
    throw err;
  }
  return server;
}

/** A private redis-server (no persistence) on a free port. */
export async function startRedisServer(): Promise<ManagedServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bil-redis-'));
  return launch({
    kind: 'redis',
    port,
    dir,
    url: `redis://127.0.0.1:${port}/0`,
    command: 'redis-server',
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    signals: { graceful: 'SIGTERM', kill: 'SIGKILL' },
    ready: async (p) => {
      // Accepting TCP is not enough while a dataset loads: wait for PONG.
      return new Promise<boolean>((resolve) => {
        const s = new Socket();
        let buf = '';
        s.setTimeout(500);
        s.once('connect', () => s.write('PING\r\n'));
        s.on('data', (d) => {
          buf += d.toString();
          if (buf.includes('\r\n')) {
            s.destroy();
            resolve(buf.startsWith('+PONG'));
          }
        });
        s.once('timeout', () => {
          s.destroy();
          resolve(false);
        });
        s.once('error', () => resolve(false));
        s.connect(p, '127.0.0.1');
      });
    },
  });
}

/** A private nats-server with JetStream, its store in its own directory (kept across restarts). */
export async function startNatsServer(): Promise<ManagedServer> {
  const port = await freePort();
  const monitor = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bil-nats-'));
  return launch({
    kind: 'nats',
    port,
    dir,
    url: `nats://127.0.0.1:${port}`,
    command: 'nats-server',
    args: ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitor), '-js', '-sd', join(dir, 'store')],
    signals: { graceful: 'SIGTERM', kill: 'SIGKILL' },
    ready: async () => {
      // /healthz answers ok once JetStream is up, not merely the client port.
      try {
        const res = await fetch(`http://127.0.0.1:${monitor}/healthz`, { signal: AbortSignal.timeout(500) });
        return res.ok;
      } catch {
        return false;
      }
    },
  });
}

/** The bin directory of the newest PostgreSQL installed (POSTGRES_BIN_DIR overrides). */
export function postgresBinDir(): string {
  if (process.env.POSTGRES_BIN_DIR) return process.env.POSTGRES_BIN_DIR;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('no PostgreSQL server binaries found: install postgresql or set POSTGRES_BIN_DIR');
  }
}

function postgresUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/** A private PostgreSQL cluster (initdb, trust auth, no fsync) on a free port; user `postgres`, database `postgres`. */
export async function startPostgresServer(): Promise<ManagedServer> {
  const port = await freePort();
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'bil-pg-'));
  const data = join(dir, 'data');
  const { uid, gid } = postgresUser();
  if (uid !== undefined) {
    chmodSync(dir, 0o755);
    chownSync(dir, uid, gid ?? uid);
  }
  try {
    execFileSync(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], {
      uid,
      gid,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${(err as { stderr?: Buffer }).stderr?.toString() ?? String(err)}`);
  }
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  return launch({
    kind: 'postgres',
    port,
    dir,
    url,
    command: join(bin, 'postgres'),
    args: [
      '-D', data, '-p', String(port), '-k', dir,
      '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    ],
    uid,
    gid,
    // SIGINT: fast shutdown (SIGTERM would wait for every client); SIGQUIT: immediate, as a crash.
    signals: { graceful: 'SIGINT', kill: 'SIGQUIT' },
    ready: async () => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } catch {
        return false;
      } finally {
        await client.end().catch(() => {});
      }
    },
  });
}

/**
 * The environment `env` with its Redis, NATS and/or PostgreSQL replaced by
 * private servers (URLs and serviceEnv): the services a test starts on it
 * talk to servers the test may stop. Key and subject prefixes stay; with a
 * private PostgreSQL the database is that cluster's `postgres`.
 */
export function onPrivateServers(env: TestEnv, servers: { redis?: ManagedServer; nats?: ManagedServer; postgres?: ManagedServer }): TestEnv {
  const out: TestEnv = { ...env, serviceEnv: { ...env.serviceEnv } };
  if (servers.redis) out.redisUrl = out.serviceEnv.REDIS_URL = servers.redis.url;
  if (servers.nats) out.natsUrl = out.serviceEnv.NATS_URL = servers.nats.url;
  if (servers.postgres) out.databaseUrl = out.serviceEnv.DATABASE_URL = servers.postgres.url;
  return out;
}
