import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { Redis } from 'ioredis';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { startNatsServer, startPostgresServer, startRedisServer, type ManagedServer } from './servers.js';

const started: ManagedServer[] = [];
afterAll(async () => {
  for (const s of started) await s.cleanup();
  for (const s of started) expect(existsSync(s.dir)).toBe(false);
});

describe('private servers for outage tests', () => {
  it('redis-server: stops, refuses clients, restarts on the same port', async () => {
    const server = await startRedisServer();
    started.push(server);
    const redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    redis.on('error', () => {});
    await redis.connect();
    expect(await redis.ping()).toBe('PONG');
    redis.disconnect();
    await server.stop();
    expect(server.running).toBe(false);
    const down = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    down.on('error', () => {});
    await expect(down.connect()).rejects.toThrow();
    down.disconnect();
    await server.start();
    const again = new Redis(server.url, { maxRetriesPerRequest: 0 });
    expect(await again.ping()).toBe('PONG');
    again.disconnect();
  });

  it('nats-server: JetStream store survives a kill and restart on the same port', async () => {
    const server = await startNatsServer();
    started.push(server);
    let nc = await connect({ servers: server.url });
    let jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'KEEP', subjects: ['keep.>'] });
    await nc.close();
    await server.restart('kill');
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info('KEEP')).config.name).toBe('KEEP');
    await nc.close();
  });

  it('PostgreSQL: initdb, trust auth, data kept across a restart on the same port', async () => {
    const server = await startPostgresServer();
    started.push(server);
    const client = new pg.Client({ connectionString: server.url });
    client.on('error', () => {});
    await client.connect();
    await client.query('CREATE TABLE t (v int); INSERT INTO t VALUES (42)');
    await server.stop();
    await expect(client.query('SELECT 1')).rejects.toThrow();
    await server.start();
    const again = new pg.Client({ connectionString: server.url });
    await again.connect();
    expect((await again.query('SELECT v FROM t')).rows).toEqual([{ v: 42 }]);
    await again.end();
    await server.restart('kill');
    const third = new pg.Client({ connectionString: server.url });
    await third.connect();
    expect((await third.query('SELECT v FROM t')).rows).toEqual([{ v: 42 }]);
    await third.end();
  });
});
