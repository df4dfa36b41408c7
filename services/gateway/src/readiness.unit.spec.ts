import { describe, expect, it } from 'vitest';
import { blockingDown, readiness } from './readiness.js';

const up = { checkHealth: async () => undefined };
const down = { checkHealth: async () => Promise.reject(new Error('unavailable')) };
const hanging = { checkHealth: () => new Promise<void>(() => undefined) };

describe('gateway readiness', () => {
  it('checks every backend and Redis, a hanging one as down after the timeout', async () => {
    const checks = await readiness({ identity: up, chat: down, digest: hanging }, { ping: async () => 'PONG' }, 50)();
    expect(checks).toEqual({ identity: 'ok', chat: 'down', digest: 'down', redis: 'ok' });
  });

  it('is blocked only by identity or Redis: chat or digest down keeps the gateway in rotation', () => {
    expect(blockingDown({ identity: 'ok', chat: 'down', digest: 'down', redis: 'ok' })).toEqual([]);
    expect(blockingDown({ identity: 'down', chat: 'ok', redis: 'ok' })).toEqual(['identity']);
    expect(blockingDown({ identity: 'ok', redis: 'down' })).toEqual(['redis']);
  });
});
