import { describe, expect, it } from 'vitest';
import { Metrics } from '@bil/runtime';
import { blockingDown, readiness, reportingDependencies } from './readiness.js';

const up = { checkHealth: async () => undefined };
const down = { checkHealth: async () => Promise.reject(new Error('unavailable')) };
const hanging = { checkHealth: () => new Promise<void>(() => undefined) };

describe('gateway readiness', () => {
  it('checks every backend and Redis, a hanging one as down after the timeout', async () => {
    const checks = await readiness({ identity: up, chat: down, digest: hanging }, { ping: async () => 'PONG' }, 50)();
    expect(checks).toEqual({ identity: 'ok', chat: 'down', digest: 'down', redis: 'ok' });
  });

  it("checks the gateway's own abilities too (token_keys)", async () => {
    const checks = await readiness({ identity: down }, { ping: async () => 'PONG' }, 50, { token_keys: async () => undefined, other: () => Promise.reject(new Error('no')) })();
    expect(checks).toEqual({ identity: 'down', redis: 'ok', token_keys: 'ok', other: 'down' });
  });

  it('is blocked only by missing token keys: any backend or Redis down keeps the gateway in rotation', () => {
    expect(blockingDown({ identity: 'ok', chat: 'down', digest: 'down', redis: 'ok', token_keys: 'ok' })).toEqual([]);
    expect(blockingDown({ identity: 'down', chat: 'ok', redis: 'ok', token_keys: 'ok' })).toEqual([]);
    expect(blockingDown({ identity: 'ok', redis: 'down', token_keys: 'ok' })).toEqual([]);
    expect(blockingDown({ identity: 'down', redis: 'ok', token_keys: 'down' })).toEqual(['token_keys']);
  });

  it('sets bil_gateway_dependency_up per dependency', async () => {
    const metrics = new Metrics('gateway-test');
    const ready = reportingDependencies(async () => ({ identity: 'down', chat: 'ok' }), metrics);
    await ready();
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^bil_gateway_dependency_up\{dependency="identity"[^}]*\} 0$/m);
    expect(text).toMatch(/^bil_gateway_dependency_up\{dependency="chat"[^}]*\} 1$/m);
  });
});
