// The notifier with the real Redis gate (shared by delivery nodes) and a
// sender that records what it was asked to send: who is pushed, collapse
// into one push per interval, the count of chats, one retry, 404/410 removal,
// no collapsed push to a device revoked while it waited.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, createLogger, type Redis } from '@bil/runtime';
import { createTestEnv, eventually, type TestEnv } from '@bil/testkit';
import { PushGate } from '../../infra/push/push-gate.js';
import { PushNotifier } from './notifier.js';
import type { PushOutcome, PushSender, PushTarget } from './sender.js';

const logger = createLogger('push-test', 'silent');
const INTERVAL = 400;
let env: TestEnv;
let redis: Redis;

beforeAll(async () => {
  env = await createTestEnv('push');
  redis = connectRedis(env.redisUrl, env.redisPrefix);
});

afterAll(async () => {
  redis?.disconnect();
  await env?.cleanup();
});

function target(userId = randomUUID()): PushTarget {
  return { deviceId: randomUUID(), userId, endpoint: `https://fcm.googleapis.com/fcm/send/${randomUUID()}`, p256dh: 'k', auth: 'a' };
}

class Recorder implements PushSender {
  readonly sent: Array<{ deviceId: string; chats: number }> = [];
  readonly outcomes: PushOutcome[] = [];
  async send(t: PushTarget, notice: { chats: number }): Promise<PushOutcome> {
    this.sent.push({ deviceId: t.deviceId, chats: notice.chats });
    return this.outcomes.shift() ?? { status: 'sent' };
  }
}

function setUp(targets: PushTarget[]) {
  const sender = new Recorder();
  const gone: PushTarget[] = [];
  const directory = {
    subscriptionsOf: async (users: readonly string[]) => targets.filter((t) => users.includes(t.userId)),
    gone: async (t: PushTarget) => void gone.push(t),
  };
  const counted: string[] = [];
  const notifier = new PushNotifier(
    { directory, gate: new PushGate(redis, INTERVAL, 60_000), sender, logger, count: (o) => void counted.push(o) },
    { retryDelayMs: 10, maxInFlight: 100 },
  );
  return { sender, gone, notifier, counted };
}

describe('PushNotifier with the Redis gate', () => {
  it('pushes offline subscribed devices only, then collapses what follows into one push counting the chats', async () => {
    const offline = target();
    const online = target();
    const { sender, notifier } = setUp([offline, online]);
    const [chat1, chat2] = [randomUUID(), randomUUID()];
    notifier.notify(chat1, [offline.userId, online.userId], new Set([online.deviceId]));
    await eventually(() => expect(sender.sent).toEqual([{ deviceId: offline.deviceId, chats: 1 }]));
    notifier.notify(chat1, [offline.userId], new Set());
    notifier.notify(chat2, [offline.userId], new Set());
    notifier.notify(chat1, [offline.userId], new Set());
    await new Promise((r) => setTimeout(r, INTERVAL / 4));
    expect(sender.sent).toHaveLength(1);
    await eventually(() => expect(sender.sent).toEqual([{ deviceId: offline.deviceId, chats: 1 }, { deviceId: offline.deviceId, chats: 2 }]));
    await new Promise((r) => setTimeout(r, INTERVAL * 2));
    expect(sender.sent).toHaveLength(2);
    await notifier.stop();
  });

  it('a collapsed push goes to the subscription held when the interval ends: none for a device revoked meanwhile', async () => {
    const kept = target();
    const revoked = target();
    const targets = [kept, revoked];
    const { sender, notifier } = setUp(targets);
    const chat = randomUUID();
    notifier.notify(chat, [kept.userId, revoked.userId], new Set());
    await eventually(() => expect(sender.sent).toHaveLength(2));
    notifier.notify(chat, [kept.userId, revoked.userId], new Set()); // both wait for their interval
    targets.splice(1, 1); // identity dropped the revoked device's subscription
    await eventually(() => expect(sender.sent).toHaveLength(3));
    await new Promise((r) => setTimeout(r, INTERVAL * 2));
    expect(sender.sent.map((x) => x.deviceId)).toEqual(expect.arrayContaining([kept.deviceId, revoked.deviceId]));
    expect(sender.sent[2]).toEqual({ deviceId: kept.deviceId, chats: 1 });
    expect(sender.sent).toHaveLength(3);
    await notifier.stop();
  });

  it('two notifiers (two nodes) share the gate: at most one push per interval between them', async () => {
    const t = target();
    const a = setUp([t]);
    const b = setUp([t]);
    const chat = randomUUID();
    const started = Date.now();
    a.notifier.notify(chat, [t.userId], new Set());
    b.notifier.notify(chat, [t.userId], new Set());
    await eventually(() => expect(a.sender.sent.length + b.sender.sent.length).toBe(1));
    // The second message waits for the interval, then goes as one collapsed push (from either node).
    await eventually(() => expect(a.sender.sent.length + b.sender.sent.length).toBe(2));
    expect(Date.now() - started).toBeGreaterThanOrEqual(INTERVAL);
    await new Promise((r) => setTimeout(r, INTERVAL * 2));
    expect(a.sender.sent.length + b.sender.sent.length).toBe(2);
    await Promise.all([a.notifier.stop(), b.notifier.stop()]);
  });

  it('retries a transient failure once, and removes a subscription the push service says is gone', async () => {
    const flaky = target();
    const dead = target();
    const { sender, gone, notifier, counted } = setUp([flaky]);
    sender.outcomes.push({ status: 'retry', reason: 'status 503' }, { status: 'retry', reason: 'status 503' });
    notifier.notify(randomUUID(), [flaky.userId], new Set());
    await eventually(() => expect(sender.sent).toHaveLength(2));
    await new Promise((r) => setTimeout(r, 100));
    expect(sender.sent).toHaveLength(2); // at most one retry
    expect(gone).toEqual([]); // a failing push service does not end the subscription
    expect(counted).toEqual(['retry', 'retry']);
    await notifier.stop();

    const second = setUp([dead]);
    second.sender.outcomes.push({ status: 'gone' });
    second.notifier.notify(randomUUID(), [dead.userId], new Set());
    await eventually(() => expect(second.gone).toEqual([dead]));
    expect(second.sender.sent).toHaveLength(1);
    expect(second.counted).toEqual(['gone']);
    await second.notifier.stop();
  });
});
