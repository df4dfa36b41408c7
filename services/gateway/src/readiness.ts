// Readiness of the gateway, and the health of each dependency reported beside
// it. Ready means this gateway can serve: it holds identity's token keys (so it
// verifies access tokens without asking anyone) and is not shutting down.
// A dependency that is down (identity, chat, digest, Redis) is shared by every
// gateway: taking them all out of the load balancer would turn a partial
// outage into a full one (identity down, messaging keeps working with the
// tokens already issued) and would replace the API's own 503
// `service_unavailable` + Retry-After with the load balancer's bare 503. So a
// dependency down makes the gateway `degraded`, not unready; its state shows
// in `/readyz` and in the `bil_gateway_dependency_up` gauge.
import type { Redis } from 'ioredis';
import { Gauge } from 'prom-client';
import type { Metrics } from '@bil/runtime';

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

export type Checks = Record<string, 'ok' | 'down'>;

/**
 * Each gRPC backend's health (named by its key, e.g. `identity`, `chat`), a
 * Redis PING and each of `local` (the gateway's own abilities, e.g.
 * `token_keys`), as 'ok' or 'down' each.
 */
export function readiness(
  backends: Record<string, HealthChecked>,
  redis: Pick<Redis, 'ping'>,
  timeoutMs = 2000,
  local: Record<string, () => Promise<unknown>> = {},
) {
  return async (): Promise<Checks> => {
    const names = Object.keys(backends);
    const localNames = Object.keys(local);
    const results = await Promise.allSettled([
      ...names.map((n) => within(backends[n]!.checkHealth(timeoutMs), timeoutMs + 100)),
      within(redis.ping(), timeoutMs),
      ...localNames.map((n) => within(local[n]!(), timeoutMs + 100)),
    ]);
    const state = (i: number) => (results[i]!.status === 'fulfilled' ? 'ok' : 'down');
    const out: Checks = {};
    names.forEach((n, i) => (out[n] = state(i)));
    out.redis = state(names.length);
    localNames.forEach((n, i) => (out[n] = state(names.length + 1 + i)));
    return out;
  };
}

/**
 * What the gateway cannot serve without: its token keys (`token_keys`,
 * fetched from identity once and kept; without them no access token can be
 * checked). Every other check is a dependency whose routes answer 503 while
 * it is down.
 */
export const REQUIRED_FOR_READINESS: ReadonlySet<string> = new Set(['token_keys']);

/** The required checks that are down (empty: ready). */
export function blockingDown(checks: Checks): string[] {
  return Object.entries(checks)
    .filter(([name, state]) => state !== 'ok' && REQUIRED_FOR_READINESS.has(name))
    .map(([name]) => name);
}

/** `ready`, also setting `bil_gateway_dependency_up{dependency}` (1 up, 0 down) on every check. */
export function reportingDependencies(ready: () => Promise<Checks>, metrics: Metrics): () => Promise<Checks> {
  const up = new Gauge({
    name: 'bil_gateway_dependency_up',
    help: 'Whether the gateway reaches a dependency (1) or not (0), as of the last readiness check',
    labelNames: ['dependency'],
    registers: [metrics.registry],
  });
  return async () => {
    const checks = await ready();
    for (const [dependency, state] of Object.entries(checks)) up.set({ dependency }, state === 'ok' ? 1 : 0);
    return checks;
  };
}
