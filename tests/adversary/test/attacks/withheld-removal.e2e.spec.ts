// Issue 12, "Why" 3: removal can be withheld from a sender. Alice removes
// carol (epoch 2); the server keeps epoch 2 from bob, who goes on sending
// under epoch 1's key, which carol still holds. The server stores and serves
// bob's old-epoch messages itself (the real chat service would refuse them:
// here the proxy is the whole server). Step 8: members who know a later
// record show such a message as out of date (`ok: false, error:
// 'out_of_date_epoch'`), not as a normal message; and carol, removed, can't
// read what up-to-date members send. (That carol can read what the
// partitioned bob sends is the documented limit: a server that partitions a
// member.)
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { BilClient } from '@bil/sdk/node';
import { loose, paths, registerAll, texts, type Person } from '../harness/clients.js';
import { serverGet } from '../harness/forge.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

/** Bob's clock runs an hour ahead: his message is late by any "short grace", whatever it is measured against. */
const LATE_MS = 60 * 60 * 1000;

describe('the removal epoch is withheld from one member', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let chatId: string;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob, carol] = await registerAll(proxy.url, 'alice', 'bob', 'carol');
    chatId = (await alice.client.chats.createGroup({ title: 'team', members: [bob.userId, carol.userId] })).chatId;
    await alice.client.messages.send(chatId, 'epoch 1 for everyone');
    for (const p of [bob, carol]) expect(texts((await p.client.messages.history(chatId)).messages)).toEqual(['epoch 1 for everyone']);
  });
  afterEach(() => proxy.reset());
  afterAll(() => proxy?.close());

  it("bob's old-epoch messages are out of date for the others; carol reads nothing of the new epoch", async () => {
    // What carol was served while a member: replayed to her after the removal (for a server, she still "is" one).
    const carolsKeys = proxy.log.findLast((x) => x.userId === carol.userId && x.method === 'GET' && paths.keys(chatId).test(x.path) && x.status === 200)!;

    await alice.client.chats.members.remove(chatId, carol.userId);
    const fresh = await alice.client.messages.send(chatId, 'epoch 2: carol is out');

    // Bob sees no epoch 2; the server keeps what he sends for itself.
    const kept: Json[] = [];
    const hideEpoch = proxy.onResponse('no epoch 2 for bob', { method: 'GET', path: paths.keys(chatId), userId: bob.userId }, (res) => {
      const epochs = (res.body.epochs as Json[]).filter((e) => e.epoch === 1);
      return { body: { epochs, current_epoch: 1, has_more: false } };
    });
    proxy.onResponse('chat at epoch 1 for bob', { method: 'GET', path: paths.chat(chatId), userId: bob.userId }, (res) => ({
      body: { chat: { ...res.body.chat, epoch: 1, epoch_rotation_required: false } },
    }));
    const keep = proxy.reply("bob's sends are kept by the server", { method: 'POST', path: paths.messages(chatId), userId: bob.userId }, (req) => {
      const seq = fresh.seq + 1 + kept.length;
      kept.push({ chat_id: chatId, seq, message_id: req.body.message_id, sender_user_id: bob.userId, sender_device_id: bob.deviceId, envelope: req.body.envelope, wrapped_key: '', epoch: req.body.envelope.header.epoch, created_at: new Date(Date.now() + LATE_MS).toISOString() });
      return { status: 201, body: { seq, created_at: new Date().toISOString(), duplicate: false } };
    });
    const staleBob = new BilClient({ baseUrl: proxy.url, keyStore: bob.store, now: () => Date.now() + LATE_MS });
    await staleBob.messages.send(chatId, 'bob, still in epoch 1');
    expect(hideEpoch.fired).toBeGreaterThan(0);
    expect(keep.fired).toBe(1);
    expect(kept[0].epoch).toBe(1);

    // Alice (and anyone up to date) gets bob's message in her history.
    const serve = proxy.onResponse("bob's kept message for alice", { method: 'GET', path: paths.messages(chatId), userId: alice.userId }, (res) => ({
      body: { ...res.body, messages: [...res.body.messages, ...kept], last_seq: kept.at(-1).seq, has_more: false },
    }));
    const page = await alice.client.messages.history(chatId, { after: fresh.seq - 1 });
    expect(serve.fired).toBe(1);
    expect(texts(page.messages)[0]).toBe('epoch 2: carol is out');
    const stale = loose(page.messages[1]);
    expect(stale).toMatchObject({ ok: false, error: 'out_of_date_epoch', seq: kept[0].seq, epoch: 1 });
    expect(stale.text).toBeUndefined();

    // Carol, removed, is served what she had plus alice's new message and bob's old-epoch one.
    const forCarol = await serverGet(alice, `/v1/chats/${chatId}/messages?after=${fresh.seq - 1}`);
    proxy.reply('carol still gets the keys she had', { method: 'GET', path: paths.keys(chatId), userId: carol.userId }, () => ({ status: 200, body: JSON.parse(carolsKeys.clientBody) }));
    const carolPage = proxy.reply('carol still gets messages', { method: 'GET', path: paths.messages(chatId), userId: carol.userId }, () => ({
      status: 200,
      body: { messages: [...forCarol.messages, ...kept], has_more: false, last_seq: kept.at(-1).seq },
    }));
    const carolSees = await carol.client.messages.history(chatId, { after: fresh.seq - 1 });
    expect(carolPage.fired).toBe(1);
    const fromAlice = carolSees.messages.find((m) => m.seq === fresh.seq)!;
    expect(fromAlice.ok).toBe(false);
    expect(JSON.stringify(carolSees)).not.toContain('epoch 2: carol is out');
  });
});
