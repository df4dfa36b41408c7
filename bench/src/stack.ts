// The two systems under test, side by side on the same machine and the same
// PostgreSQL: the project as `npm start` runs it (scripts/start.mjs through
// @bil/testkit's startSystem, on a private database, Redis prefix and free
// ports, with its own nats-server), and the raw server (raw-server.ts) on a
// database of its own. Neither touches anything it did not create.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createTestEnv, freePort, freePorts, startNatsServer, startSystem, stopSystem, systemEnv, testSettings, type ManagedServer, type Ports, type Run, type TestEnv } from '@bil/testkit';
import { childPids, cmdline, type Processes } from './proc.js';

export interface Stack {
  /** The gateway, http://127.0.0.1:P. */
  baseUrl: string;
  /** Where clients open their WebSocket (BENCH_WS_URL, BENCH_WS=delivery, else the gateway's /v1/ws, whose sockets npm start hands to delivery). */
  wsUrl: string;
  raw: { baseUrl: string; wsUrl: string };
  ports: Ports;
  processes: Processes;
  /** The project's database (for seeding history and counting events). */
  db: pg.Pool;
  env: TestEnv;
  /** An access token for any user/device, signed with the key identity signs with (synthetic devices for socket counts). */
  mint(userId: string, deviceId: string): string;
  stop(): Promise<void>;
}

const benchDir = join(import.meta.dirname, '..');

function spawnRaw(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, 'src', 'raw-server.ts')], { cwd: benchDir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('raw server ready')) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d));
    child.once('exit', (code) => reject(new Error(`raw server exited (${code}):\n${out}`)));
  });
}

/** The service processes start.mjs runs, by name (digest-worker for `main.js worker`). */
function servicePids(startPid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pid of childPids(startPid)) {
    // node [BIL_NODE_ARGS…] services/<name>/dist/main.js [worker]
    const args = cmdline(pid);
    const i = args.findIndex((a) => /services\/[a-z]+\/dist\/main\.js$/.test(a));
    const m = i < 0 ? null : /services\/([a-z]+)\/dist\/main\.js$/.exec(args[i]!);
    if (m) out[args[i + 1] === 'worker' ? `${m[1]}-worker` : m[1]!] = pid;
  }
  return out;
}

/** `extra`: settings added to the project's environment (e.g. the S3 blob backend for the attachment bench). */
export async function startStacks(log: (s: string) => void, extra: Record<string, string> = {}): Promise<Stack> {
  const nats: ManagedServer = await startNatsServer();
  const created = await createTestEnv('bench');
  const env: TestEnv = { ...created, natsUrl: nats.url };
  const ports = await freePorts();
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const settings = {
    ...systemEnv(env, ports),
    ...testSettings({ perIp: 1_000_000, perUsername: 1_000_000 }),
    IDENTITY_JWT_PRIVATE_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    ACCESS_TOKEN_TTL_SECONDS: '86400',
    GATEWAY_MAX_CONNECTIONS_PER_ADDRESS: '0',
    DELIVERY_MAX_CONNECTIONS_PER_ADDRESS: '100000',
    DIGEST_RATE_PER_MINUTE: '10000',
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
    NODE_ENV: 'development',
    ...extra,
  };
  log(`starting the project (scripts/start.mjs) on database ${new URL(env.databaseUrl).pathname.slice(1)}, NATS ${nats.url}`);
  let system: Run;
  try {
    system = await startSystem(settings);
    // BENCH_SYSTEM_LOG=<file>: what the services print from here on (e.g. with BIL_NODE_ARGS=--trace-gc).
    if (process.env.BENCH_SYSTEM_LOG) {
      const out = createWriteStream(process.env.BENCH_SYSTEM_LOG);
      system.child.stdout!.pipe(out);
      system.child.stderr!.pipe(out);
    }
  } catch (err) {
    await env.cleanup();
    await nats.cleanup();
    throw err;
  }
  const adminUrl = new URL(env.databaseUrl);
  const dbName = adminUrl.pathname.slice(1);
  const rawDb = `${dbName}_raw`;
  adminUrl.pathname = '/postgres';
  const admin = new pg.Pool({ connectionString: adminUrl.toString(), max: 2 });
  await admin.query(`CREATE DATABASE "${rawDb}"`);
  const rawUrl = new URL(env.databaseUrl);
  rawUrl.pathname = `/${rawDb}`;
  const rawPort = await freePort();
  const raw = await spawnRaw({ RAW_PORT: String(rawPort), RAW_DATABASE_URL: rawUrl.toString(), RAW_JWT_PUBLIC_KEY: publicKey.export({ format: 'pem', type: 'spki' }).toString() });
  log(`raw server on ${rawPort}, database ${rawDb}`);

  const pids = { ...servicePids(system.child.pid!), nats: natsPid(nats), raw: raw.pid! };
  const wsUrl =
    process.env.BENCH_WS_URL ??
    (process.env.BENCH_WS === 'delivery' ? `ws://127.0.0.1:${ports.DELIVERY_WS_PORT}/v1/ws` : `ws://127.0.0.1:${ports.BIL_GATEWAY_PORT}/v1/ws`);
  const db = new pg.Pool({ connectionString: env.databaseUrl, max: 4 });
  return {
    baseUrl: `http://127.0.0.1:${ports.BIL_GATEWAY_PORT}`,
    wsUrl,
    raw: { baseUrl: `http://127.0.0.1:${rawPort}`, wsUrl: `ws://127.0.0.1:${rawPort}/v1/ws` },
    ports,
    processes: { pids, databases: { postgres: [dbName], 'postgres-raw': [rawDb] }, admin },
    db,
    env,
    mint: minter(privateKey, publicKey),
    stop: async () => {
      await db.end();
      raw.kill('SIGTERM');
      await stopSystem(system);
      await admin.query(`DROP DATABASE IF EXISTS "${rawDb}" WITH (FORCE)`).catch(() => undefined);
      await admin.end();
      await env.cleanup();
      await nats.cleanup();
    },
  };
}

/** nats-server's pid: the process listening in the server's directory (testkit keeps the child private). */
function natsPid(nats: ManagedServer): number {
  for (const pid of childPids(process.pid)) {
    const args = cmdline(pid);
    if (args[0]?.endsWith('nats-server') && args.join(' ').includes(String(nats.port))) return pid;
  }
  try {
    return Number(readFileSync(join(nats.dir, 'nats.pid'), 'utf8')) || 0;
  } catch {
    return 0;
  }
}

/** Tokens as identity's TokenSigner makes them (kid: the RFC 7638 thumbprint of the public JWK). */
function minter(privateKey: KeyObject, publicKey: KeyObject): (userId: string, deviceId: string) => string {
  const x = publicKey.export({ format: 'jwk' }).x!;
  const kid = createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`).digest('base64url');
  const head = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid, typ: 'at+jwt' })).toString('base64url');
  return (userId, deviceId) => {
    const iat = Math.floor(Date.now() / 1000);
    const claims = { did: deviceId, sid: randomUUID(), sub: userId, iss: 'bil-identity', aud: 'bil-api', iat, exp: iat + 86_400, jti: randomUUID() };
    const input = `${head}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
  };
}
