// Gives each test file its own PostgreSQL database, Redis key prefix and NATS
// subject/stream prefix on the local servers (TEST_DATABASE_URL,
// TEST_REDIS_URL, TEST_NATS_URL; defaults: the local servers), so test files
// run in parallel and beside a running system. Where those servers are not
// reachable but a Docker engine is, it starts testcontainers instead.
// system.ts starts the whole system (scripts/start.mjs) on such an environment.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import pg from 'pg';
import { Redis } from 'ioredis';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { systemConfigDir } from './system.js';

export interface TestEnv {
  /** Unique id of this environment, lowercase letters and digits. */
  id: string;
  databaseUrl: string;
  redisUrl: string;
  redisPrefix: string;
  natsUrl: string;
  natsPrefix: string;
  /** Environment variables a service under test should see. */
  serviceEnv: Record<string, string>;
  cleanup(): Promise<void>;
}

const DEFAULTS = {
  database: 'postgres://postgres@127.0.0.1:5432/postgres',
  redis: 'redis://127.0.0.1:6379/0',
  nats: 'nats://127.0.0.1:4222',
};

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
    socket.connect(Number(u.port || defaultPort), u.hostname);
  });
}

function dockerAvailable(): boolean {
  return Boolean(process.env.DOCKER_HOST) || existsSync('/var/run/docker.sock');
}

interface Servers {
  database: string;
  redis: string;
  nats: string;
}

let servers: Promise<Servers> | undefined;

async function resolveServers(): Promise<Servers> {
  const wanted: Servers = {
    database: process.env.TEST_DATABASE_URL || DEFAULTS.database,
    redis: process.env.TEST_REDIS_URL || DEFAULTS.redis,
    nats: process.env.TEST_NATS_URL || DEFAULTS.nats,
  };
  const [db, redis, nats] = await Promise.all([
    reachable(wanted.database, 5432),
    reachable(wanted.redis, 6379),
    reachable(wanted.nats, 4222),
  ]);
  if (db && redis && nats) return wanted;
  const missing = [!db && `PostgreSQL (${wanted.database})`, !redis && `Redis (${wanted.redis})`, !nats && `NATS (${wanted.nats})`]
    .filter(Boolean)
    .join(', ');
  if (!dockerAvailable()) {
    throw new Error(
      `test servers not reachable: ${missing}. Start them (see docs/operations.md) or set TEST_DATABASE_URL / TEST_REDIS_URL / TEST_NATS_URL.`,
    );
  }
  return startContainers(wanted, { db, redis, nats });
}

async function startContainers(wanted: Servers, up: { db: boolean; redis: boolean; nats: boolean }): Promise<Servers> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const out = { ...wanted };
  if (!up.db) {
    const c = await new GenericContainer('postgres:15')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/ready to accept connections/, 2))
      .start();
    out.database = `postgres://postgres@${c.getHost()}:${c.getMappedPort(5432)}/postgres`;
  }
  if (!up.redis) {
    const c = await new GenericContainer('redis:7').withExposedPorts(6379).start();
    out.redis = `redis://${c.getHost()}:${c.getMappedPort(6379)}/0`;
  }
  if (!up.nats) {
    const c = await new GenericContainer('nats:2.10').withCommand(['-js']).withExposedPorts(4222).start();
    out.nats = `nats://${c.getHost()}:${c.getMappedPort(4222)}`;
  }
  return out;
}

/**
 * Creates an isolated environment for one test file.
 *
 * @example
 * const env = await createTestEnv('identity');
 * afterAll(() => env.cleanup());
 */
export async function createTestEnv(label: string): Promise<TestEnv> {
  servers ??= resolveServers();
  const s = await servers;
  const id = `${label.toLowerCase().replace(/[^a-z0-9]/g, '')}${randomBytes(5).toString('hex')}`;
  const dbName = `bil_test_${id}`;

  const admin = new pg.Client({ connectionString: s.database });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${dbName}"`);
  } finally {
    await admin.end();
  }
  const dbUrl = new URL(s.database);
  dbUrl.pathname = `/${dbName}`;

  const redisPrefix = `bil_test:${id}:`;
  const natsPrefix = `t_${id}.`;
  const env: TestEnv = {
    id,
    databaseUrl: dbUrl.toString(),
    redisUrl: s.redis,
    redisPrefix,
    natsUrl: s.nats,
    natsPrefix,
    serviceEnv: {
      NODE_ENV: 'test',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      DATABASE_URL: dbUrl.toString(),
      REDIS_URL: s.redis,
      REDIS_PREFIX: redisPrefix,
      NATS_URL: s.nats,
      NATS_SUBJECT_PREFIX: natsPrefix,
      // The secret that signs internal gRPC calls, shared by the services of this environment only.
      SERVICE_AUTH_SECRET: randomBytes(32).toString('base64url'),
    },
    cleanup: async () => {
      await Promise.allSettled([
        dropDatabase(s.database, dbName),
        clearRedis(s.redis, redisPrefix),
        deleteStreams(s.nats, natsPrefix),
        rm(systemConfigDir(env), { recursive: true, force: true }),
      ]);
    },
  };
  return env;
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

async function clearRedis(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function deleteStreams(url: string, prefix: string): Promise<void> {
  const u = new URL(url);
  const nc = await connect({ servers: `${u.hostname}:${u.port || 4222}` });
  try {
    const jsm = await jetstreamManager(nc);
    const streamPrefix = prefix.replace(/\./g, '_').toUpperCase();
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(streamPrefix)) await jsm.streams.delete(name);
    }
  } finally {
    await nc.close();
  }
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  timeoutMs = 5000,
  intervalMs = 25,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw last instanceof Error ? last : new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
export * from './decider.js';
export { expectSnapshotsEqualReplay } from './snapshots.js';
export { explainGenericPlan } from './plans.js';
export { FakeOpenAI, MODEL_SUMMARY, type Behaviour, type SeenRequest } from './fake-openai.js';
export { launchPlanning, reunionFr, type Conversation, type ConversationMessage } from './conversations.js';
export { freePort } from './ports.js';
export { TestPushService, decryptWebPush, type ReceivedPush, type TestPushSubscription } from './push-service.js';
export { startTestS3, type TestS3 } from './s3.js';
export { spawnNode, type NodeProcess } from './process.js';
export {
  bilMain,
  freePorts,
  repoRoot,
  run,
  SERVICE_PORTS,
  startSystem,
  stopSystem,
  systemConfigDir,
  systemEnv,
  testSettings,
  waitFor,
  waitUntil,
  type Ports,
  type Run,
} from './system.js';
export {
  startRedisServer,
  startNatsServer,
  startPostgresServer,
  postgresBinDir,
  onPrivateServers,
  type ManagedServer,
  type ServerKind,
  type StopMode,
} from './servers.js';

/** A UUIDv7 (RFC 9562 §5.7, time-ordered), as clients choose message ids. */
export function uuidv7(now = Date.now()): string {
  const b = randomBytes(16);
  b.writeUIntBE(now, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
