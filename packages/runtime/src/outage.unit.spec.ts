import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { OutageLog, isDependencyUnavailable } from './outage.js';

describe('OutageLog', () => {
  it('logs one line when failures start and one when they end, not one per retry', () => {
    const lines: Array<{ msg: string; downMs?: number; failures?: number }> = [];
    const logger = pino(new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
    let now = 1000;
    const log = new OutageLog(logger, 'redis', () => now);
    log.ok();
    for (let i = 0; i < 50; i++) log.failed(new Error('connect ECONNREFUSED'));
    now = 4000;
    log.ok();
    log.ok();
    expect(lines.map((l) => l.msg)).toEqual(['redis unavailable; retrying quietly until it recovers', 'redis recovered']);
    expect(lines[1]).toMatchObject({ downMs: 3000, failures: 50 });
  });
});

describe('isDependencyUnavailable', () => {
  it('tells an unreachable Redis, NATS or PostgreSQL from a bug', () => {
    const named = (name: string, message = 'x') => Object.assign(new Error(message), { name });
    expect(isDependencyUnavailable(named('MaxRetriesPerRequestError'))).toBe(true);
    expect(isDependencyUnavailable(new Error('Connection is closed.'))).toBe(true);
    expect(isDependencyUnavailable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isDependencyUnavailable(named('TimeoutError'))).toBe(true);
    expect(isDependencyUnavailable(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(true);
    expect(isDependencyUnavailable(Object.assign(new Error('wrapped'), { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }))).toBe(true);
    expect(isDependencyUnavailable(new TypeError('undefined is not a function'))).toBe(false);
    expect(isDependencyUnavailable(Object.assign(new Error('dup'), { code: '23505' }))).toBe(false);
    expect(isDependencyUnavailable(undefined)).toBe(false);
  });
});
