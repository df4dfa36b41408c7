// client.live() through the real stack: identity, chat, delivery and the
// gateway as built processes on the local PostgreSQL, Redis and NATS. The
// devices connect to the gateway's /v1/ws (proxied to delivery); everything
// they show was decrypted and verified by the SDK.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LiveClient, LiveClientEvents } from '../src/index.js';
import { deliveryStackBuilt, startStack, type Stack } from './stack.js';
import { people, type Device } from './people.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Entry = { [K in keyof LiveClientEvents]: { type: K; e: LiveClientEvents[K] } }[keyof LiveClientEvents];

const EVENTS = ['message', 'undecryptable', 'gap', 'synced', 'receipt', 'typing', 'epoch', 'membership', 'disconnected', 'reconnecting', 'error'] as const;

/** A live connection with everything it emits, in order. */
class Watch {
  readonly log: Entry[] = [];
  constructor(readonly live: LiveClient) {
    const record = <K extends keyof LiveClientEvents>(type: K) => live.on(type, (e) => this.log.push({ type, e } as unknown as Entry));
    for (const t of EVENTS) record(t);
  }
  of<K extends keyof LiveClientEvents>(type: K): LiveClientEvents[K][] {
    return this.log.filter((x) => x.type === type).map((x) => x.e as LiveClientEvents[K]);
  }
  texts(chatId: string): string[] {
    return this.of('message')
      .filter((m) => m.chatId === chatId)
      .map((m) => m.text);
  }
  async until(what: string, cond: () => boolean, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.log.map((x) => x.type))}`);
      await sleep(20);
    }
  }
}

describe.skipIf(!deliveryStackBuilt)('@bil/sdk client.live() through gateway /v1/ws → delivery (e2e)', () => {
  let stack: Stack;
  const watches: Watch[] = [];
  const { register, link } = people(() => stack.baseUrl);

  async function connect(d: Device): Promise<Watch> {
    const w = new Watch(d.client.live({ initialBackoffMs: 100, maxBackoffMs: 1000, ackDelayMs: 20 }));
    watches.push(w);
    await w.until('synced', () => w.of('synced').length > 0);
    return w;
  }

  let alice: Device;
  let bob: Device;
  let bobPhone: Device;
  let carol: Device;
  let chatId: string;
  let aliceLive: Watch;
  let bobLive: Watch;
  let bobPhoneLive: Watch;

  beforeAll(async () => {
    stack = await startStack({}, { delivery: true });
    [alice, bob, carol] = (await Promise.all(['alice', 'bob', 'carol'].map(register))) as [Device, Device, Device];
    bobPhone = await link(bob, 'phone');
    chatId = (await alice.client.chats.createPersonal(bob.account.userId)).chatId;
  }, 60_000);

  afterAll(async () => {
    for (const w of watches) w.live.close();
    await stack?.stop();
  });

  it("personal chat: both of Bob's devices receive and decrypt Alice's message live", async () => {
    [aliceLive, bobLive, bobPhoneLive] = await Promise.all([connect(alice), connect(bob), connect(bobPhone)]);
    const sent = await alice.client.messages.send(chatId, 'hello Bob, live 👋');
    for (const w of [bobLive, bobPhoneLive]) {
      await w.until('the message', () => w.of('message').length > 0);
      expect(w.of('message')[0]).toMatchObject({
        ok: true,
        chatId,
        seq: sent.seq,
        messageId: sent.messageId,
        senderUserId: alice.account.userId,
        senderDeviceId: alice.account.deviceId,
        text: 'hello Bob, live 👋',
        outgoing: false,
      });
    }
    // Alice's own device gets its message too (delivery omits its key copy; the SDK reads it from history).
    await aliceLive.until('the own message', () => aliceLive.of('message').length > 0);
    expect(aliceLive.of('message')[0]).toMatchObject({ seq: sent.seq, text: 'hello Bob, live 👋', outgoing: true });
    expect([...aliceLive.of('undecryptable'), ...bobLive.of('undecryptable'), ...bobPhoneLive.of('undecryptable')]).toEqual([]);
  }, 30_000);

  it('typing and read receipts (live and stored) arrive', async () => {
    aliceLive.live.typing(chatId);
    await bobLive.until('typing', () => bobLive.of('typing').length > 0);
    expect(bobLive.of('typing')[0]).toMatchObject({ chatId, userId: alice.account.userId, deviceId: alice.account.deviceId, active: true });

    bobLive.live.read(chatId, 1);
    await aliceLive.until('live receipt', () => aliceLive.of('receipt').some((r) => !r.durable));
    expect(aliceLive.of('receipt').find((r) => !r.durable)).toMatchObject({ chatId, userId: bob.account.userId, deviceId: bob.account.deviceId, seq: 1 });

    await bob.client.messages.markRead(chatId, 1);
    await aliceLive.until('stored receipt', () => aliceLive.of('receipt').some((r) => r.durable));
    expect(aliceLive.of('receipt').find((r) => r.durable)).toMatchObject({ chatId, userId: bob.account.userId, seq: 1, durable: true });
  }, 30_000);

  it("Bob's phone, offline during 20 messages, gets them all in order on reconnect, then synced, then live ones", async () => {
    bobPhoneLive.live.close();
    expect((await bobPhone.store.load())!.cursors?.[chatId]).toBe(1);
    const texts = Array.from({ length: 20 }, (_, i) => `while away ${i + 1}`);
    for (const t of texts) await alice.client.messages.send(chatId, t);
    await bobLive.until('20 live messages', () => bobLive.texts(chatId).length === 21);

    // A new live connection of the same device: its cursors come from the key store.
    const again = new Watch(bobPhone.client.live({ initialBackoffMs: 100, ackDelayMs: 20 }));
    watches.push(again);
    await again.until('synced', () => again.of('synced').length > 0);
    const syncedAt = again.log.findIndex((x) => x.type === 'synced');
    const before = again.log.slice(0, syncedAt);
    expect(before.map((x) => x.type)).toEqual(Array(20).fill('message'));
    expect(again.texts(chatId)).toEqual(texts);
    expect(again.of('message').map((m) => m.seq)).toEqual(texts.map((_, i) => i + 2));

    await alice.client.messages.send(chatId, 'back online');
    await again.until('the live one', () => again.texts(chatId).length === 21);
    expect(again.log.findIndex((x) => x.type === 'message' && x.e.text === 'back online')).toBeGreaterThan(syncedAt);
    expect(again.of('undecryptable')).toEqual([]);
    expect(again.of('gap')).toEqual([]);
    expect((await bobPhone.store.load())!.cursors?.[chatId]).toBe(22);
  }, 40_000);

  it('a group of three receives live group messages', async () => {
    const carolLive = await connect(carol);
    const group = await alice.client.chats.createGroup({ title: 'live trio', members: [bob.account.userId, carol.account.userId] });
    const phone = watches.at(-2)!; // Bob's phone, reconnected above
    const sent = await alice.client.messages.send(group.chatId, 'hi group');
    for (const w of [bobLive, phone, carolLive]) {
      await w.until('the group message', () => w.texts(group.chatId).length > 0);
      expect(w.of('message').find((m) => m.chatId === group.chatId)).toMatchObject({ seq: sent.seq, epoch: 1, senderUserId: alice.account.userId, text: 'hi group' });
    }
    await carol.client.messages.send(group.chatId, 'hi from Carol');
    await bobLive.until("Carol's message", () => bobLive.texts(group.chatId).length === 2);
    expect(bobLive.texts(group.chatId)).toEqual(['hi group', 'hi from Carol']);
    expect(carolLive.of('membership').some((m) => m.chatId === group.chatId)).toBe(true);
  }, 30_000);

  it("a revoked device's live connection ends: disconnected with the reason, no reconnect loop", async () => {
    const tablet = await link(alice, 'tablet');
    const w = await connect(tablet);
    await alice.client.devices.revoke(tablet.account.deviceId);
    await w.until('disconnected', () => w.of('disconnected').length > 0, 20_000);
    expect(w.of('disconnected')).toEqual([{ code: 4003, reason: 'revoked', reconnect: false }]);
    await sleep(1500);
    expect(w.of('reconnecting')).toEqual([]);
    expect(w.of('disconnected')).toHaveLength(1);
  }, 30_000);
});
