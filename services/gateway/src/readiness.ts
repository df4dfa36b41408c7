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
