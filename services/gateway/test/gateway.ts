// One way for the gateway's end-to-end tests to stand up a real gateway in
// front of real identity (and chat) clients: a Redis under the test's prefix,
// the JWKS verifier, the rate limiter, readiness, and the production body
// limits, listening on a free loopback port. Each test passes only what it
// changes (`overrides`); the clients stay the test's to close.
import type { FastifyInstance } from 'fastify';
import { LiveRevocations, connectRedis, createLogger, type Redis } from '@bil/runtime';
import type { TestEnv } from '@bil/testkit';
import { buildApp, type AppDeps } from '../src/app.js';
import { AccessTokenVerifier, JwksCache } from '../src/auth.js';
import type { ChatApi } from '../src/chat-client.js';
import type { IdentityApi } from '../src/identity-client.js';
import { RateLimiter } from '../src/rate-limit.js';
import { readiness } from '../src/readiness.js';
import { httpClient, unavailableChat } from './fixtures.js';

export interface TestGateway {
  app: FastifyInstance;
  redis: Redis;
  port: number;
  http: ReturnType<typeof httpClient>;
  /** Closes the app and its Redis connection (not the clients). */
  close(): Promise<void>;
}

export async function startTestGateway(
  env: TestEnv,
  p: { name: string; identity: IdentityApi; chat?: ChatApi; overrides?: Partial<AppDeps> },
): Promise<TestGateway> {
  const redis = connectRedis(env.redisUrl, env.redisPrefix);
  const revocations = new LiveRevocations(redis);
  const chat = p.chat ?? unavailableChat();
  const app = await buildApp({
    logger: createLogger(p.name, process.env.TEST_LOG_LEVEL ?? 'silent'),
    identity: p.identity,
    chat,
    verifier: new AccessTokenVerifier({
      jwks: new JwksCache({ fetch: () => p.identity.getJwks(), minRefreshIntervalMs: 5000 }),
      revocations,
    }),
    limiter: new RateLimiter(redis, 60),
    limits: { perIp: 1000, perUsername: 1000 },
    ready: readiness({ identity: p.identity, chat }, redis),
    bodyLimitBytes: 64 * 1024,
    bodyLimits: { message: 512 * 1024, epoch: 8 * 1024 * 1024 },
    trustProxyHops: 0,
    ...p.overrides,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    app,
    redis,
    port,
    http: httpClient(`http://127.0.0.1:${port}`),
    close: async () => {
      await app.close();
      await revocations.close();
      await redis.quit();
    },
  };
}
