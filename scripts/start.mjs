// `npm start`: runs the whole system in the foreground on the local servers.
// Checks PostgreSQL, Redis and NATS first (starts one that is installed but
// not running, scripts/lib/local-servers.mjs; names one it can't start, with
// how to start it), creates the database, applies migrations (each service applies its
// own at start), starts every service, prints where the gateway listens, and
// stops everything cleanly on Ctrl-C. It also prints the digest service's
// identity key (public; from DIGEST_SERVICE_IDENTITY_SEED, else the public
// development seed) with its fingerprint, and writes it to the CLI's
// servers.json for this gateway, where `bil` and `npm run demo` pick it up:
// clients take that key from their configuration, never from the server.
// The services behind the gateway listen on 127.0.0.1 only (the gateway on
// every address, as before), and every internal gRPC call is signed with a
// SERVICE_AUTH_SECRET made for this run unless one is given (docs/architecture.md,
// "Service-to-service authentication").
import { spawn } from 'node:child_process';
import { createECDH, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ensureServers, localServers } from './lib/local-servers.mjs';
import { LOOPBACK, relayWsHandoffs, stdioOf, systemServices, waitReady } from './lib/services.mjs';

const root = new URL('..', import.meta.url).pathname;
const env = process.env;
const DATABASE_URL = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/bil';
const REDIS_URL = env.REDIS_URL ?? 'redis://127.0.0.1:6379/0';
const NATS_URL = env.NATS_URL ?? 'nats://127.0.0.1:4222';
const GATEWAY_PORT = env.BIL_GATEWAY_PORT ?? '8080';
const IDENTITY_GRPC_PORT = env.IDENTITY_GRPC_PORT ?? '50051';
const IDENTITY_METRICS_PORT = env.IDENTITY_METRICS_PORT ?? '9101';
const DELIVERY_WS_PORT = env.DELIVERY_WS_PORT ?? '8090';
const DELIVERY_METRICS_PORT = env.DELIVERY_METRICS_PORT ?? '9103';
const CHAT_GRPC_PORT = env.CHAT_GRPC_PORT ?? '50052';
const CHAT_METRICS_PORT = env.CHAT_METRICS_PORT ?? '9102';
const DIGEST_GRPC_PORT = env.DIGEST_GRPC_PORT ?? '50054';
const DIGEST_METRICS_PORT = env.DIGEST_METRICS_PORT ?? '9104';
const DIGEST_WORKER_METRICS_PORT = env.DIGEST_WORKER_METRICS_PORT ?? '9105';

// The secret that signs internal gRPC calls: a new one each run (every process
// restarts with it), never printed. NODE_ENV=production without one stops before
// anything starts, as each service would.
let SERVICE_AUTH_SECRET = env.SERVICE_AUTH_SECRET;
if (!SERVICE_AUTH_SECRET) {
  if (env.NODE_ENV === 'production') {
    console.error('bil: SERVICE_AUTH_SECRET is required when NODE_ENV=production (≥ 32 characters: openssl rand -base64 32)');
    process.exit(1);
  }
  SERVICE_AUTH_SECRET = randomBytes(32).toString('base64url');
}

const servers = localServers({ databaseUrl: DATABASE_URL, redisUrl: REDIS_URL, natsUrl: NATS_URL });
const missing = await ensureServers(servers, { startMissing: env.BIL_START_SERVERS !== '0' });
if (missing.length) {
  for (const s of missing) {
    console.error(`bil: ${s.name} is not reachable at ${s.url}`);
    console.error(`     start it with: ${s.hint}`);
  }
  console.error('     (or run: bash scripts/local-servers.sh, which installs and starts all three)');
  process.exit(1);
}

// The database itself.
const dbName = decodeURIComponent(new URL(DATABASE_URL).pathname.slice(1)) || 'bil';
const adminUrl = new URL(DATABASE_URL);
adminUrl.pathname = '/postgres';
const admin = new pg.Client({ connectionString: adminUrl.toString() });
await admin.connect();
const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
if (!rowCount) {
  await admin.query(`CREATE DATABASE "${dbName.replace(/"/g, '""')}"`);
  console.log(`bil: created database ${dbName}`);
}
await admin.end();

// The digest service identity key clients are configured with (docs/digest.md
// "Keys"), derived by the digest service's own code from the seed it uses.
let digestKey;
try {
  const [{ serviceKey }, cliConfig, servers] = await Promise.all([
    import('../services/digest/dist/service-key.js'),
    import('../apps/cli/dist/config.js'),
    import('../apps/cli/dist/servers.js'),
  ]);
  let k;
  try {
    k = serviceKey({ NODE_ENV: env.NODE_ENV ?? 'development', DIGEST_SERVICE_IDENTITY_SEED: env.DIGEST_SERVICE_IDENTITY_SEED || undefined });
  } catch (err) {
    console.error(
      err?.name === 'ConfigError' ? `bil: ${err.message}` : 'bil: DIGEST_SERVICE_IDENTITY_SEED is not 32 bytes in base64url (43 characters, no padding)',
    );
    process.exit(1);
  }
  const dir = cliConfig.configDir(env);
  digestKey = { key: k.key, fingerprint: k.fingerprint, dev: k.development, file: servers.serversPath(dir), written: false };
  const urls = [`http://localhost:${GATEWAY_PORT}`, `http://127.0.0.1:${GATEWAY_PORT}`];
  try {
    await servers.updateServers(dir, urls, { digest_service_key: k.key });
    digestKey.written = true;
  } catch (err) {
    console.error(`bil: could not write the digest key to ${digestKey.file}: ${err.message} (set it with: npx bil digest key set ${k.key})`);
  }
} catch (err) {
  console.error(`bil: the build is incomplete (${err.message}): run \`npm run build\` (npm start builds first)`);
  process.exit(1);
}
const printDigestKey = () => {
  console.log(`bil: digest service identity key${digestKey.dev ? ' (the public DEVELOPMENT key, for local use only: anyone can impersonate a digest service that uses it)' : ''}:`);
  console.log(`bil:   ${digestKey.key}`);
  console.log(`bil:   fingerprint ${digestKey.fingerprint}`);
  if (digestKey.written) console.log(`bil:   written to ${digestKey.file} for http://localhost:${GATEWAY_PORT}, where bil and npm run demo read it`);
};
printDigestKey();

// A development JWT signing key that survives restarts (production passes its own).
let jwtKey = env.IDENTITY_JWT_PRIVATE_KEY;
if (!jwtKey) {
  const dir = join(root, '.bil');
  const file = join(dir, 'jwt-ed25519.pem');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  }
  jwtKey = readFileSync(file, 'utf8');
}

// A development VAPID key pair for Web Push that survives restarts (browsers' subscriptions are bound to the
// public key); production passes its own (docs/push.md).
let vapid = { PUSH_VAPID_PUBLIC_KEY: env.PUSH_VAPID_PUBLIC_KEY, PUSH_VAPID_PRIVATE_KEY: env.PUSH_VAPID_PRIVATE_KEY };
if (!vapid.PUSH_VAPID_PUBLIC_KEY && !vapid.PUSH_VAPID_PRIVATE_KEY) {
  const file = join(root, '.bil', 'vapid.json');
  if (!existsSync(file)) {
    mkdirSync(join(root, '.bil'), { recursive: true, mode: 0o700 });
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const pair = { PUSH_VAPID_PUBLIC_KEY: ecdh.getPublicKey('base64url'), PUSH_VAPID_PRIVATE_KEY: ecdh.getPrivateKey().toString('hex').padStart(64, '0') };
    pair.PUSH_VAPID_PRIVATE_KEY = Buffer.from(pair.PUSH_VAPID_PRIVATE_KEY, 'hex').toString('base64url');
    writeFileSync(file, JSON.stringify(pair), { mode: 0o600 });
  }
  vapid = JSON.parse(readFileSync(file, 'utf8'));
}

const common = { ...env, ...vapid, DATABASE_URL, REDIS_URL, NATS_URL, LOG_LEVEL: env.LOG_LEVEL ?? 'info', SERVICE_AUTH_SECRET, METRICS_HOST: env.METRICS_HOST || LOOPBACK };
const services = systemServices(
  env,
  { GATEWAY_PORT, IDENTITY_GRPC_PORT, IDENTITY_METRICS_PORT, DELIVERY_WS_PORT, DELIVERY_METRICS_PORT, CHAT_GRPC_PORT, CHAT_METRICS_PORT, DIGEST_GRPC_PORT, DIGEST_METRICS_PORT, DIGEST_WORKER_METRICS_PORT },
  jwtKey,
);

const children = [];
let delivery;
let stopping = false;

// Stops the services in reverse start order (the gateway before what it calls),
// each allowed to finish its in-flight work.
function stopAll(code) {
  if (stopping) return;
  stopping = true;
  console.log('bil: stopping…');
  const force = setTimeout(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }, 20_000);
  force.unref();
  (async () => {
    for (const c of [...children].reverse()) {
      if (c.exitCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
    console.log('bil: stopped');
    process.exit(code);
  })();
}
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

async function start(svc) {
  // BIL_NODE_ARGS: extra node flags for every service, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  // (docs/performance.md, "Profiling"); NODE_OPTIONS can't carry --cpu-prof.
  const nodeArgs = env.BIL_NODE_ARGS ? env.BIL_NODE_ARGS.split(' ').filter(Boolean) : [];
  const child = spawn(process.execPath, [...nodeArgs, join(root, svc.entry), ...(svc.args ?? [])], {
    env: { ...common, ...svc.env },
    stdio: stdioOf(svc),
  });
  children.push(child);
  if (svc.name === 'delivery') delivery = child;
  if (svc.name === 'gateway') relayWsHandoffs(child, () => delivery);
  const prefix = (stream) => (chunk) => {
    for (const line of chunk.toString().split('\n')) if (line) stream.write(`[${svc.name}] ${line}\n`);
  };
  child.stdout.on('data', prefix(process.stdout));
  child.stderr.on('data', prefix(process.stderr));
  let ready = false;
  child.once('exit', (code, signal) => {
    if (ready && !stopping) {
      console.error(`bil: ${svc.name} stopped unexpectedly (${signal ?? code}); stopping the rest`);
      stopAll(1);
    }
  });
  await waitReady(svc, child);
  ready = true;
}

try {
  for (const svc of services) await start(svc);
} catch (err) {
  console.error(`bil: ${err.message}`);
  stopAll(1);
}
if (!stopping) {
  console.log('');
  console.log(`bil: bil-message is up. Gateway: http://localhost:${GATEWAY_PORT}  (API docs: http://localhost:${GATEWAY_PORT}/v1/openapi.json)`);
  if (existsSync(new URL('../apps/web/dist/index.html', import.meta.url))) console.log(`bil: web client: open http://localhost:${GATEWAY_PORT} in a browser`);
  else console.log('bil: web client not built (apps/web/dist missing): `npm run build` builds it; the gateway serves the API only');
  printDigestKey();
  console.log('bil: press Ctrl-C to stop.');
}
