// The real stack for the SDK's end-to-end tests: the built identity service
// and gateway as child processes (node dist/main.js) on a private database,
// Redis prefix and NATS prefix from @bil/testkit.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, createTestEnv, spawnNode, type TestEnv } from '@bil/testkit';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const identityMain = join(repoRoot, 'services', 'identity', 'dist', 'main.js');
export const gatewayMain = join(repoRoot, 'services', 'gateway', 'dist', 'main.js');
export const chatMain = join(repoRoot, 'services', 'chat', 'dist', 'main.js');
export const deliveryMain = join(repoRoot, 'services', 'delivery', 'dist', 'main.js');
export const digestMain = join(repoRoot, 'services', 'digest', 'dist', 'main.js');
export const stackBuilt = existsSync(identityMain) && existsSync(gatewayMain);
/** The stack with the chat service (services/chat built). */
export const chatStackBuilt = stackBuilt && existsSync(chatMain);
/** The stack with chat and delivery (services/delivery built). */
export const deliveryStackBuilt = chatStackBuilt && existsSync(deliveryMain);

export { freePort };

export interface Service {
  output(): string;
  stop(): Promise<void>;
  /** Starts it again (same settings and ports) after stop(); resolves once it is ready. */
  start(): Promise<void>;
}

/** Spawns `node main` and resolves once its output contains `ready`. */
async function startService(name: string, main: string, env: Record<string, string>, ready: string, timeoutMs = 60_000, args: string[] = []): Promise<Service> {
  let earlier = '';
  let current = await spawnService(name, main, env, ready, timeoutMs, args);
  return {
    output: () => earlier + current.output(),
    stop: () => current.stop(),
    start: async () => {
      earlier += current.output();
      current = await spawnService(name, main, env, ready, timeoutMs, args);
    },
  };
}

async function spawnService(name: string, main: string, env: Record<string, string>, ready: string, timeoutMs: number, args: string[]): Promise<Omit<Service, 'start'>> {
  const p = await spawnNode(name, main, { env, ready, timeoutMs, args });
  return { output: p.output, stop: p.stop };
}

export interface Stack {
  baseUrl: string;
  env: TestEnv;
  /** Each service by name (identity, chat, delivery, gateway, …), to stop and start again in outage tests. */
  services: Record<string, Service>;
  output(): string;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Start the chat service. */
  chat?: boolean;
  /** Start a delivery node too (implies chat); the gateway proxies `/v1/ws` to it. */
  delivery?: boolean;
  /** Overrides of chat settings (e.g. CHAT_BLOB_QUOTA_BYTES, CHAT_EXPIRY_INTERVAL_MS). */
  chatEnv?: Record<string, string>;
  /** Overrides of delivery settings (e.g. DELIVERY_REVOCATION_CHECK_MS). */
  deliveryEnv?: Record<string, string>;
  /** Extra gateway settings (e.g. PUSH_VAPID_PUBLIC_KEY). */
  gatewayEnv?: Record<string, string>;
  /** Start the digest API and one digest worker too (implies chat; built-in summariser unless `digestEnv` sets a model). */
  digest?: boolean;
  /** Overrides of digest settings (API and worker), e.g. DIGEST_MIN_UNREAD. */
  digestEnv?: Record<string, string>;
  /** Changes the test environment before anything starts (e.g. testkit's onPrivateServers, for outage tests). */
  env?: (env: TestEnv) => TestEnv;
}

/**
 * Identity + gateway (+ chat with `{chat: true}`, + chat and delivery with
 * `{delivery: true}`) on a private test environment. `identityEnv` overrides
 * identity settings (e.g. token lifetimes).
 */
export async function startStack(identityEnv: Record<string, string> = {}, options: StackOptions = {}): Promise<Stack> {
  const withChat = options.chat === true || options.delivery === true || options.digest === true;
  const created = await createTestEnv('sdk');
  const env = options.env ? options.env(created) : created;
  const [grpcPort, identityMetricsPort, gatewayPort] = [await freePort(), await freePort(), await freePort()];
  const [chatPort, chatMetricsPort] = [await freePort(), await freePort()];
  const deliveryPort = options.delivery ? await freePort() : 0;
  const digestPort = options.digest ? await freePort() : 0;
  const digests: Service[] = [];
  let identity: Service | undefined;
  let chat: Service | undefined;
  let delivery: Service | undefined;
  let gateway: Service | undefined;
  try {
    identity = await startService(
      'identity',
      identityMain,
      {
        ...env.serviceEnv,
        LOG_LEVEL: 'info',
        IDENTITY_GRPC_HOST: '127.0.0.1',
        IDENTITY_GRPC_PORT: String(grpcPort),
        IDENTITY_METRICS_PORT: String(identityMetricsPort),
        IDENTITY_MIGRATE_ON_START: 'true',
        IDENTITY_SCRYPT_LOG2N: '14',
        ...identityEnv,
      },
      'identity listening',
    );
    if (withChat) {
      chat = await startService(
        'chat',
        chatMain,
        {
          ...env.serviceEnv,
          LOG_LEVEL: 'info',
          CHAT_GRPC_HOST: '127.0.0.1',
          CHAT_GRPC_PORT: String(chatPort),
          CHAT_METRICS_PORT: String(chatMetricsPort),
          CHAT_MIGRATE_ON_START: 'true',
          ...options.chatEnv,
        },
        'chat listening',
      );
    }
    if (options.digest) {
      const digestEnv = { ...env.serviceEnv, LOG_LEVEL: 'info', DIGEST_GRPC_HOST: '127.0.0.1', DIGEST_GRPC_PORT: String(digestPort), DIGEST_METRICS_PORT: String(await freePort()), DIGEST_WORKER_METRICS_PORT: String(await freePort()), ...options.digestEnv };
      digests.push(await startService('digest', digestMain, digestEnv, 'digest listening'));
      digests.push(await startService('digest-worker', digestMain, digestEnv, 'digest worker started', 60_000, ['worker']));
    }
    if (options.delivery) {
      delivery = await startService(
        'delivery',
        deliveryMain,
        {
          ...env.serviceEnv,
          LOG_LEVEL: 'info',
          DELIVERY_HOST: '127.0.0.1',
          DELIVERY_WS_PORT: String(deliveryPort),
          DELIVERY_METRICS_PORT: '0',
          DELIVERY_NODE_ID: `sdk-${deliveryPort}`,
          IDENTITY_GRPC_URL: `127.0.0.1:${grpcPort}`,
          CHAT_GRPC_URL: `127.0.0.1:${chatPort}`,
          ...options.deliveryEnv,
        },
        'delivery listening',
      );
    }
    gateway = await startService(
      'gateway',
      gatewayMain,
      {
        NODE_ENV: 'test',
        LOG_LEVEL: 'info',
        // The secret the backends above check every call against.
        SERVICE_AUTH_SECRET: env.serviceEnv.SERVICE_AUTH_SECRET!,
        REDIS_URL: env.redisUrl,
        REDIS_PREFIX: env.redisPrefix,
        BIL_GATEWAY_PORT: String(gatewayPort),
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_METRICS_PORT: '0',
        IDENTITY_GRPC_URL: `127.0.0.1:${grpcPort}`,
        // Without chat: a port nothing listens on, so chat routes answer 503.
        CHAT_GRPC_URL: `127.0.0.1:${chatPort}`,
        // Generous deadlines: a loaded 2-core CI machine can take seconds per scrypt-heavy call.
        IDENTITY_TIMEOUT_MS: '30000',
        CHAT_TIMEOUT_MS: '30000',
        DIGEST_TIMEOUT_MS: '30000',
        RATE_LIMIT_AUTH_PER_IP: '1000',
        RATE_LIMIT_AUTH_PER_USERNAME: '100',
        ...(options.digest ? { DIGEST_GRPC_URL: `127.0.0.1:${digestPort}` } : {}),
        ...(options.delivery ? { DELIVERY_WS_URL: `ws://127.0.0.1:${deliveryPort}` } : {}),
        ...options.gatewayEnv,
      },
      'gateway listening',
    );
  } catch (err) {
    await gateway?.stop();
    await delivery?.stop();
    for (const d of digests.reverse()) await d.stop();
    await chat?.stop();
    await identity?.stop();
    await created.cleanup();
    throw err;
  }
  const services = [gateway, delivery, ...[...digests].reverse(), chat, identity].filter((s): s is Service => s !== undefined);
  const named: Record<string, Service> = { identity, gateway };
  if (chat) named.chat = chat;
  if (delivery) named.delivery = delivery;
  return {
    baseUrl: `http://127.0.0.1:${gatewayPort}`,
    env,
    services: named,
    output: () => services.map((s) => s.output()).join('\n'),
    stop: async () => {
      for (const s of services) await s.stop();
      await created.cleanup();
    },
  };
}
