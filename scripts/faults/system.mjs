// The system under the fault campaign: its own PostgreSQL, Redis and NATS
// (@bil/testkit servers on free ports; never the shared ones on 5432/6379/4222)
// and every service as `npm start` runs it (scripts/lib/services.mjs), each a
// child process of its own so a scenario can kill -9 one and start it again.
// Service output goes to one log file per service in the run's directory.
import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, startNatsServer, startPostgresServer, startRedisServer } from '@bil/testkit';
import { LOOPBACK, relayWsHandoffs, stdioOf, systemServices, waitReady } from '../lib/services.mjs';

const root = new URL('../..', import.meta.url).pathname;

export class FaultSystem {
  /** @type {Record<string, import('@bil/testkit').ManagedServer>} */
  servers = {};
  /** name → { svc, child } */
  procs = new Map();
  logDir = mkdtempSync(join(tmpdir(), 'bil-faults-'));
  baseUrl = '';

  async start() {
    const [postgres, redis, nats] = await Promise.all([startPostgresServer(), startRedisServer(), startNatsServer()]);
    this.servers = { postgres, redis, nats };
    const ports = await freePorts();
    this.baseUrl = `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`;
    const jwtKey = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    this.common = {
      ...process.env,
      NODE_ENV: 'development',
      DATABASE_URL: postgres.url,
      REDIS_URL: redis.url,
      NATS_URL: nats.url,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      SERVICE_AUTH_SECRET: randomBytes(32).toString('base64url'),
      METRICS_HOST: LOOPBACK,
      GATEWAY_METRICS_PORT: ports.GATEWAY_METRICS_PORT,
      // The campaign signs up its users from one address.
      RATE_LIMIT_AUTH_PER_IP: '1000',
      RATE_LIMIT_AUTH_PER_USERNAME: '1000',
      // Sign-ups hash passwords: on a loaded 2-core machine one can take seconds (the default deadline is 5 s).
      IDENTITY_TIMEOUT_MS: '30000',
    };
    // The built-in summariser and no prefixes, whatever this shell says.
    for (const k of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'REDIS_PREFIX', 'NATS_SUBJECT_PREFIX']) delete this.common[k];
    const p = { ...ports, GATEWAY_PORT: ports.BIL_GATEWAY_PORT };
    for (const svc of systemServices({}, p, jwtKey)) {
      this.procs.set(svc.name, { svc, child: undefined });
      await this.startService(svc.name);
    }
  }

  /** Starts a service (again) and resolves once its /readyz answers 200. */
  async startService(name) {
    const entry = this.procs.get(name);
    const { svc } = entry;
    const child = spawn(process.execPath, [join(root, svc.entry), ...(svc.args ?? [])], {
      env: { ...this.common, ...svc.env },
      stdio: stdioOf(svc),
    });
    entry.child = child;
    if (name === 'gateway') relayWsHandoffs(child, () => this.procs.get('delivery')?.child);
    const log = createWriteStream(join(this.logDir, `${name}.log`), { flags: 'a' });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    await waitReady(svc, child, 90_000);
  }

  /** kill -9, as a crash; resolves once the process is gone. */
  async killService(name) {
    const { child } = this.procs.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  /** Services that exited by themselves (not killed by a scenario). */
  crashed() {
    return [...this.procs.entries()].filter(([, e]) => e.child && e.child.exitCode !== null && e.child.signalCode === null).map(([n, e]) => `${n} (exit ${e.child.exitCode})`);
  }

  async stop() {
    for (const [, e] of [...this.procs.entries()].reverse()) {
      const c = e.child;
      if (!c || c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    for (const s of Object.values(this.servers)) await s.cleanup().catch(() => {});
  }
}
