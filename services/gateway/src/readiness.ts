// Readiness of the gateway's dependencies, each checked with a short timeout.
import type { Redis } from 'ioredis';

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A backend reached over gRPC with a grpc.health.v1 check. */
export interface HealthChecked {
  checkHealth(timeoutMs?: number): Promise<void>;
}

/**
 * Each gRPC backend's health (named by its key, e.g. `identity`, `chat`) and a
 * Redis PING, as 'ok' or 'down' each.
 */
export function readiness(backends: Record<string, HealthChecked>, redis: Pick<Redis, 'ping'>, timeoutMs = 2000) {
  return async (): Promise<Record<string, 'ok' | 'down'>> => {
    const names = Object.keys(backends);
    const results = await Promise.allSettled([
      ...names.map((n) => within(backends[n]!.checkHealth(timeoutMs), timeoutMs + 100)),
      within(redis.ping(), timeoutMs),
    ]);
    const out: Record<string, 'ok' | 'down'> = {};
    names.forEach((n, i) => (out[n] = results[i]!.status === 'fulfilled' ? 'ok' : 'down'));
    out.redis = results[names.length]!.status === 'fulfilled' ? 'ok' : 'down';
    return out;
  };
}

/**
 * The dependencies without which the gateway serves nothing: Redis (rate
 * limits, revocations on every request) and identity (sign-in, refresh, the
 * token keys). Chat or digest being down makes their routes answer 503
 * `service_unavailable` but keeps the gateway in rotation: taking every
 * gateway out of the load balancer would turn a partial outage into a full one.
 */
export const REQUIRED_FOR_READINESS: ReadonlySet<string> = new Set(['identity', 'redis']);

/** The required dependencies that are down (empty: ready). */
export function blockingDown(checks: Record<string, 'ok' | 'down'>): string[] {
  return Object.entries(checks)
    .filter(([name, state]) => state !== 'ok' && REQUIRED_FOR_READINESS.has(name))
    .map(([name]) => name);
}
