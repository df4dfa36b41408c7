// (outage.ts) Which failures are dependency outages (answered 503 service_unavailable and
// retried by clients) and which are bugs (500 internal).
import { describe, expect, it } from 'vitest';
import { DriverException, ConnectionException, UniqueConstraintViolationException } from '@mikro-orm/core';
import { AppError } from './errors.js';
import { OutageLog, isDependencyUnavailable } from './outage.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('isDependencyUnavailable', () => {
  it.each([
    ['pg: connection refused', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['pg: server shut down (57P01)', withCode('terminating connection due to administrator command', '57P01')],
    ['pg: server starting up (57P03)', withCode('the database system is starting up', '57P03')],
    ['pg: too many connections (53300)', withCode('sorry, too many clients already', '53300')],
    ['pg: connection failure (08006)', withCode('connection failure', '08006')],
    ['pg: connection cut', new Error('Connection terminated unexpectedly')],
    ['pg-pool: connect timeout', new Error('timeout exceeded when trying to connect')],
    ['knex: no connection to hand out', Object.assign(new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), { name: 'KnexTimeoutError' })],
    ['MikroORM: DriverException carrying ECONNREFUSED', Object.assign(new DriverException(withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')), { code: 'ECONNREFUSED' })],
    ['MikroORM: ConnectionException', new ConnectionException(new Error('lost'))],
    ['ioredis: connection closed', new Error('Connection is closed.')],
    ['a cause chain', new Error('append failed', { cause: withCode('read ECONNRESET', 'ECONNRESET') })],
    ['an AppError unavailable', new AppError('unavailable', 'service_unavailable', 'down')],
  ])('%s: outage', (_what, err) => {
    expect(isDependencyUnavailable(err)).toBe(true);
  });

  it.each([
    ['unique violation (23505)', withCode('duplicate key value violates unique constraint', '23505')],
    ['MikroORM unique violation', new UniqueConstraintViolationException(withCode('duplicate key', '23505'))],
    ['NUL in text (22021)', withCode('invalid byte sequence for encoding "UTF8": 0x00', '22021')],
    ['syntax error (42601)', withCode('syntax error at or near', '42601')],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['an AppError internal', new AppError('internal', 'internal', 'internal error')],
    ['not an error', 'ECONNREFUSED'],
    ['undefined', undefined],
  ])('%s: not an outage', (_what, err) => {
    expect(isDependencyUnavailable(err)).toBe(false);
  });
});

describe('OutageLog', () => {
  it('logs the start and the end of an outage, not every failed call', () => {
    const lines: Array<[string, object, string]> = [];
    const log = new OutageLog(
      { warn: ((o: object, m: string) => lines.push(['warn', o, m])) as never, info: ((o: object, m: string) => lines.push(['info', o, m])) as never },
      'PostgreSQL',
    );
    log.ok();
    for (let i = 0; i < 100; i++) log.failed(withCode('connect ECONNREFUSED', 'ECONNREFUSED'), { method: 'm' });
    log.ok();
    log.ok();
    expect(lines.map(([level, , msg]) => `${level}: ${msg}`)).toEqual(['warn: PostgreSQL unavailable; retrying quietly until it recovers', 'info: PostgreSQL recovered']);
    expect(lines[0]![1]).toMatchObject({ method: 'm', err: 'connect ECONNREFUSED' });
    expect(lines[1]![1]).toMatchObject({ failures: 100 });
  });
});
