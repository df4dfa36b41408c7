// Issue 18's reconnect storm on a delivery node (child process, real Redis and
// NATS, chat stood in by FakeChat): the devices of one group reconnecting
// together are caught up with shared pages (CatchUpMessages, no ListMessages
// per device), each device gets exactly the messages after its cursor and then
// the live ones, in order, once each; a chat outage is ridden out with
// retries, and a longer one closes the sockets 4013.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import type { Nats } from '@bil/runtime';
import { FakeChat, TestClient, TokenIssuer, deliveryBuilt, newUser, range, startNode, testNats, type DeliveryNode, type Device } from './support.js';

describe.skipIf(!deliveryBuilt)('shared catch-up of a group', () => {
  let env: TestEnv;
  let nats: Nats;
  let issuer: TokenIssuer;
  let chat: FakeChat;
  let node: DeliveryNode;
  const clients: TestClient[] = [];
  const connect = async (token: string, opts?: Parameters<typeof TestClient.connect>[2]) => {
    const c = await TestClient.connect(node.url, token, opts);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    env = await createTestEnv('deliveryshared');
    nats = await testNats(env);
    issuer = new TokenIssuer();
    chat = new FakeChat(nats);
    const backends = { identity: await issuer.start(), chat: await chat.start() };
    node = await startNode(env, 'node-shared', backends, { DELIVERY_MAX_PENDING_FRAMES: '1000' });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await node?.stop();
    chat?.stop();
    issuer?.stop();
    await nats?.nc.close();
    await env?.cleanup();
  });

  async function group(members: number, messages: number): Promise<{ chatId: string; devices: Device[] }> {
    const devices = Array.from({ length: members }, () => newUser()[0]!);
    const chatId = await chat.createChat('group', devices.map((d) => d.userId));
    for (let i = 0; i < messages; i++) await chat.post(chatId, devices[0]!, { publish: false });
    return { chatId, devices };
  }

  it('40 devices reconnecting to a group with 250 missed: a few shared reads, no read per device, each device its messages then the live ones, in order, once', async () => {
    const { chatId, devices } = await group(40, 250);
    const before = { ...chat.calls };
    const cursors = devices.map((_, i) => (i % 4 === 0 ? 100 : 0));
    // Connected first, then every `sync` at once: the storm.
    const sockets = await Promise.all(devices.map(async (d) => connect(await issuer.token(d), { sync: false })));
    sockets.forEach((s, i) => s.send({ type: 'sync', cursors: { [chatId]: cursors[i] } }));
    // Live messages while they catch up: held until `synced`, then after the history.
    for (let i = 0; i < 10; i++) await chat.post(chatId, devices[1]!);
    await Promise.all(sockets.map((s) => s.waitFor((f) => f.type === 'synced', 30_000)));
    const seqs = await Promise.all(sockets.map((s, i) => s.waitSeqs(chatId, 260 - cursors[i]!)));
    seqs.forEach((got, i) => expect(got).toEqual(range(cursors[i]! + 1, 260)));
    expect(chat.calls.listMessages - before.listMessages).toBe(0);
    // Two pages (1-200, 201-250) for devices within a page of each other: far fewer reads than the 80 of one per device and page.
    const shared = chat.calls.catchUpMessages - before.catchUpMessages;
    expect(shared).toBeGreaterThanOrEqual(2);
    expect(shared).toBeLessThanOrEqual(20);
  }, 60_000);

  it('a chat outage during catch-up is retried (the device syncs); one that lasts past the retries closes the socket 4013', async () => {
    const { chatId, devices } = await group(2, 30);
    chat.failCatchUps = 2;
    const patient = await connect(await issuer.token(devices[0]!));
    await patient.waitFor((f) => f.type === 'synced', 15_000);
    expect(patient.seqs(chatId)).toEqual(range(1, 30));
    chat.failCatchUps = 100;
    const started = Date.now();
    const unlucky = await connect(await issuer.token(devices[1]!));
    expect(await unlucky.closed).toMatchObject({ code: 4013 });
    // 0.25 + 0.5 + 1 + 2 s of backoff before giving up, never a close at the first failure.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3500);
    expect(unlucky.frames.some((f) => f.type === 'synced')).toBe(false);
    chat.failCatchUps = 0;
  }, 30_000);
});
