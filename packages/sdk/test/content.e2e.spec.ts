// Replies, reactions, edits and delete-for-me through the real stack
// (identity, chat, delivery, gateway on the local PostgreSQL, Redis and NATS).
// The server sees only envelopes: everything here is decided by the clients
// from signed content (docs/protocol.md "Message content").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilClient, BilStateError, type DecryptedMessage, type HistoryMessage, type LiveClient, type LiveClientEvents } from '../src/index.js';
import { deliveryStackBuilt, startStack, type Stack } from './stack.js';
import { people, type Device } from './people.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const shown = (messages: HistoryMessage[]): DecryptedMessage[] => messages.filter((m): m is DecryptedMessage => m.ok);

describe.skipIf(!deliveryStackBuilt)('@bil/sdk message content: replies, reactions, edits, delete for me (e2e)', () => {
  let stack: Stack;
  const { register, link, newClient } = people(() => stack.baseUrl);
  let alice: Device;
  let alicePhone: Device;
  let bob: Device;
  let carol: Device;
  let groupId: string;
  let first: string;
  const lives: LiveClient[] = [];

  beforeAll(async () => {
    stack = await startStack({}, { delivery: true });
    [alice, bob, carol] = (await Promise.all(['alice', 'bob', 'carol'].map(register))) as [Device, Device, Device];
    alicePhone = await link(alice, 'phone');
    groupId = (await alice.client.chats.createGroup({ title: 'picnic', members: [bob.account.userId, carol.account.userId] })).chatId;
    first = (await alice.client.messages.send(groupId, 'lunch at noon?')).messageId;
  }, 120_000);

  afterAll(async () => {
    for (const l of lives) l.close();
    await stack?.stop();
  });

  const find = async (d: Device, messageId: string) => shown((await d.client.messages.history(groupId, { limit: 100 })).messages).find((m) => m.messageId === messageId);

  it('a reply carries the target id and a quote of its text', async () => {
    const reply = await bob.client.messages.sendText(groupId, 'yes!', { replyTo: first });
    const m = await find(alice, reply.messageId);
    expect(m).toMatchObject({ text: 'yes!', content: { kind: 'text', text: 'yes!', reply_to: { message_id: first, quote: 'lunch at noon?' } } });
    await expect(bob.client.messages.sendText(groupId, 'to nothing', { replyTo: '0193c2a5-0000-7000-8000-000000000404' })).rejects.toMatchObject({ code: 'unknown_message' });
  });

  it('reactions from several users are aggregated per emoji; reaction messages are not shown', async () => {
    await bob.client.messages.react(groupId, first, '👍');
    await carol.client.messages.react(groupId, first, '👍');
    await carol.client.messages.react(groupId, first, '🎉');
    await carol.client.messages.react(groupId, first, '🎉', { remove: true });
    for (const d of [alice, alicePhone, bob, carol]) {
      const page = await d.client.messages.history(groupId, { limit: 100 });
      expect(shown(page.messages).map((m) => m.content?.kind)).toEqual(['text', 'text']);
      expect(page.gaps).toEqual([]);
      expect(shown(page.messages)[0]!.reactions).toEqual({ '👍': [bob.account.userId, carol.account.userId].sort() });
    }
    // The newest page holds only reactions: nothing to show, but its span pages on.
    const tail = await alice.client.messages.history(groupId, { limit: 2 });
    expect(tail).toMatchObject({ messages: [], hasMore: true, span: { from: 5, to: 6 } });
    expect(shown((await alice.client.messages.history(groupId, { before: tail.span!.from, limit: 3 })).messages).map((m) => m.text)).toEqual(['yes!']);
    // Asked for, the reaction messages themselves are there too.
    const all = await alice.client.messages.history(groupId, { limit: 100, includeUpdates: true });
    expect(shown(all.messages).filter((m) => m.content?.kind === 'reaction')).toHaveLength(4);
    await expect(bob.client.messages.react(groupId, first, '👍👍')).rejects.toThrow(TypeError);
  });

  it("the sender's edit is applied, with its history; the live connection reports it as updated", async () => {
    const live = bob.client.live({ initialBackoffMs: 100, maxBackoffMs: 1000, ackDelayMs: 20 });
    lives.push(live);
    const updates: LiveClientEvents['updated'][] = [];
    let synced = false;
    live.on('updated', (u) => updates.push(u));
    live.on('synced', () => (synced = true));
    for (let i = 0; !synced && i < 500; i++) await sleep(20);
    await find(bob, first); // bob's client has seen the message it will see edited

    const edit = await alicePhone.client.messages.edit(groupId, first, 'lunch at one?');
    for (const d of [alice, bob, carol]) {
      const m = await find(d, first);
      expect(m).toMatchObject({ text: 'lunch at one?', content: { kind: 'text', text: 'lunch at noon?' } });
      expect(m!.edited).toEqual([{ text: 'lunch at one?', at: expect.any(Number), messageId: edit.messageId }]);
    }
    // Catching up, the earlier reactions came as updates too; the edit follows live.
    const edited = () => updates.find((u) => u.by.kind === 'edit');
    for (let i = 0; !edited() && i < 500; i++) await sleep(20);
    expect(updates.filter((u) => u.by.kind === 'reaction').length).toBeGreaterThan(0);
    expect(edited()).toMatchObject({ chatId: groupId, messageId: first, text: 'lunch at one?', by: { messageId: edit.messageId, senderUserId: alice.account.userId, kind: 'edit' } });
  });

  it('an edit by someone else is refused locally, and a forged one is ignored and reported by every reader', async () => {
    await expect(carol.client.messages.edit(groupId, first, 'carol was here')).rejects.toSatisfy((e) => e instanceof BilStateError && e.code === 'not_own_message');
    // Carol's client is bypassed: a raw edit content targeting Alice's message.
    const forged = await carol.client.messages.sendContent(groupId, { kind: 'edit', target: first, text: 'carol was here' });
    for (const d of [alice, bob, carol]) {
      const page = await d.client.messages.history(groupId, { limit: 100 });
      expect(shown(page.messages).find((m) => m.messageId === first)!.text).toBe('lunch at one?');
      expect(page.ignored).toContainEqual({ chatId: groupId, messageId: forged.messageId, seq: forged.seq, senderUserId: carol.account.userId, target: first, reason: 'not_own_message' });
    }
    // A fresh client of the same profile (nothing in memory) reads the same.
    const fresh = new BilClient({ baseUrl: stack.baseUrl, keyStore: bob.store });
    const m = shown((await fresh.messages.history(groupId, { limit: 100 })).messages).find((x) => x.messageId === first);
    expect(m).toMatchObject({ text: 'lunch at one?', edited: [{ text: 'lunch at one?' }] });
    // Another fresh client reads only the oldest page: the reactions and the edit, on later pages, were kept in the profile.
    const again = new BilClient({ baseUrl: stack.baseUrl, keyStore: bob.store });
    const oldest = shown((await again.messages.history(groupId, { after: 0, limit: 1 })).messages);
    expect(oldest).toHaveLength(1);
    expect(oldest[0]).toMatchObject({ messageId: first, text: 'lunch at one?', edited: [{ text: 'lunch at one?' }], reactions: { '👍': [bob.account.userId, carol.account.userId].sort() } });
    const kept = (await bob.store.load())!.chats!.updates![groupId]!;
    expect(kept.map((u) => u.messageId)).toContain(forged.messageId);
    await expect(alice.client.messages.edit(groupId, '0193c2a5-0000-7000-8000-000000000404', 'x')).rejects.toMatchObject({ code: 'unknown_message' });
  });

  it('delete for me hides a message on that device profile only, across restarts', async () => {
    const note = await bob.client.messages.send(groupId, 'a note for later');
    await alice.client.messages.deleteForMe(groupId, note.messageId);
    expect(await find(alice, note.messageId)).toBeUndefined();
    expect(await find(alicePhone, note.messageId)).toMatchObject({ text: 'a note for later' });
    expect(await find(bob, note.messageId)).toMatchObject({ text: 'a note for later' });
    const restarted = newClient(alice.store).client;
    expect(shown((await restarted.messages.history(groupId, { limit: 100 })).messages).some((m) => m.messageId === note.messageId)).toBe(false);
    expect((await alice.store.load())!.chats!.hidden![groupId]).toEqual([note.messageId]);
  });

  it('a personal chat: text and reactions', async () => {
    const chatId = (await alice.client.chats.createPersonal(bob.account.userId)).chatId;
    const hi = await alice.client.messages.send(chatId, 'hi Bob');
    await bob.client.messages.react(chatId, hi.messageId, '❤️');
    const page = await alice.client.messages.history(chatId);
    expect(shown(page.messages)).toHaveLength(1);
    expect(shown(page.messages)[0]).toMatchObject({ text: 'hi Bob', reactions: { '❤️': [bob.account.userId] } });
  });
});
