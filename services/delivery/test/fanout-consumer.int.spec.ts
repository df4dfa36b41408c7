// Issue #14 item 12: the fan-out consumer retries without limit. A consumer
// created by an older node (max_deliver 5) is updated in place at start, on a
// nats-server of the test's own.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { startNatsServer, type ManagedServer } from '@bil/testkit';
import { connectNats, createLogger, ensureStream, type Nats } from '@bil/runtime';
import { FanoutConsumer } from '../src/infra/fanout-consumer.js';

let server: ManagedServer;
let nats: Nats;

beforeAll(async () => {
  server = await startNatsServer();
  nats = await connectNats(server.url, 'fc.', 'fanout-consumer-test');
});

afterAll(async () => {
  await nats?.nc.close();
  await server?.cleanup();
});

describe('fan-out consumer', () => {
  it('never gives an event up: creates, or updates an old consumer to, max_deliver -1', async () => {
    const stream = await ensureStream(nats, 'chat');
    await nats.jsm.consumers.add(stream, {
      durable_name: 'fc_delivery-fanout',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      filter_subject: 'fc.chat.v1.>',
      max_deliver: 5,
      ack_wait: nanos(10_000),
    });
    const logger = createLogger('test', 'silent');
    const old = new FanoutConsumer({ nats, logger, context: 'chat', durable: 'delivery-fanout', ackWaitMs: 2000, handle: async () => undefined });
    await old.start();
    expect((await nats.jsm.consumers.info(stream, 'fc_delivery-fanout')).config).toMatchObject({ max_deliver: -1, ack_wait: nanos(2000) });
    await old.stop();

    const fresh = new FanoutConsumer({ nats, logger, context: 'chat', durable: 'other-fanout', handle: async () => undefined });
    await fresh.start();
    expect((await nats.jsm.consumers.info(stream, 'fc_other-fanout')).config.max_deliver).toBe(-1);
    await fresh.stop();
  });

  it('redelivers a failing event past the old limit of 5 attempts until it succeeds', async () => {
    let attempts = 0;
    const done = new Promise<void>((resolve) => {
      const c = new FanoutConsumer({
        nats,
        logger: createLogger('test', 'silent'),
        context: 'chat',
        durable: 'retry-fanout',
        maxRetryDelayMs: 50,
        handle: async () => {
          if (++attempts < 9) throw new Error('connect ECONNREFUSED');
          resolve();
          void c.stop();
        },
      });
      void c.start().then(() => nats.js.publish('fc.chat.v1.message.posted', JSON.stringify({ chatId: 'c' })));
    });
    await done;
    expect(attempts).toBe(9);
  });

  it('logs a stalled pull: the consumer deleted under it is a warning naming the consumer and the status', async () => {
    const lines: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const silent = createLogger('test', 'silent');
    const logger = Object.assign(Object.create(silent) as typeof silent, {
      warn: (obj: Record<string, unknown>, msg: string) => void lines.push({ obj, msg }),
    });
    const c = new FanoutConsumer({ nats, logger, context: 'chat', durable: 'watched-fanout', handle: async () => undefined });
    await c.start();
    const stream = await ensureStream(nats, 'chat');
    await nats.jsm.consumers.delete(stream, 'fc_watched-fanout');
    for (let i = 0; i < 100 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(lines[0]).toMatchObject({
      obj: { consumer: 'fc_watched-fanout', status: { type: 'consumer_deleted' } },
      msg: 'NATS pull consumer stalled: events wait until the client pulls again',
    });
    await c.stop();
  });
});
