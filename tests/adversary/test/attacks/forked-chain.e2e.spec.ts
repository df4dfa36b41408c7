// Issue 12, "Why" 4: forks go unnoticed. The server holds two different
// records for epoch 2, both validly signed by alice's device (one it got
// from her and published, one it got from her and kept: an admin device that
// signed twice, or one the server tricked). It serves bob the fork; bob sends
// in it; then the server withdraws the fork and serves the real chain.
// Step 8: bob's client sees that the chain doesn't extend its pinned head
// (two records for epoch 2), raises `group_forked`, sends nothing, and what
// it verified before the fork stays readable.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { rotateEpoch } from '@bil/crypto';
import { BilTrustError } from '@bil/sdk/node';
import { failure, outcome, paths, registerAll, restart, texts, type Person } from '../harness/clients.js';
import { realChain, realDevices } from '../harness/forge.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

describe('a forked epoch chain served to one member', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
  });
  afterEach(() => proxy.reset());
  afterAll(() => proxy?.close());

  it('group_forked on send once the fork shows; history verified before stays readable', async () => {
    const chatId = (await alice.client.chats.createGroup({ title: 'fork', members: [bob.userId] })).chatId;
    await alice.client.messages.send(chatId, 'before the fork');
    expect(texts((await bob.client.messages.history(chatId)).messages)).toEqual(['before the fork']);

    // The other epoch 2: signed by alice's device over the same epoch 1, never published.
    const { chain } = await realChain(alice, chatId);
    const fork = await rotateEpoch({
      chain,
      signer: await alice.local(),
      createdAt: Date.now(),
      members: [
        { role: 'admin', devices: await realDevices(alice, alice.userId) },
        { role: 'member', devices: await realDevices(alice, bob.userId) },
      ],
    });
    await alice.client.chats.rotate(chatId); // the real epoch 2
    const serveFork = proxy.onResponse('epoch 2 is the fork, for bob', { method: 'GET', path: paths.keys(chatId), userId: bob.userId }, (res) => {
      const epochs = (res.body.epochs as Json[]).map((e) =>
        e.epoch === 2 ? { ...e, record: fork.record, record_hash: fork.chain.head.hash, wrapped_key: fork.wrappedKeys.find((k) => k.device_id === bob.deviceId)!.wrapped_key } : e,
      );
      return { body: { ...res.body, epochs } };
    });
    // Bob can't tell yet: the fork extends what he verified. The server takes his message and keeps it
    // (the real chat service would refuse it: envelope v2 names the record hash; a malicious one doesn't care).
    const kept: Json[] = [];
    const keep = proxy.reply('the server keeps what bob sends in the fork', { method: 'POST', path: paths.messages(chatId), userId: bob.userId }, (req) => {
      kept.push({ chat_id: chatId, seq: 1000 + kept.length, message_id: req.body.message_id, sender_user_id: bob.userId, sender_device_id: bob.deviceId, envelope: req.body.envelope, wrapped_key: '', epoch: req.body.envelope.header.epoch, created_at: new Date().toISOString() });
      return { status: 201, body: { seq: kept.at(-1).seq, created_at: new Date().toISOString(), duplicate: false } };
    });
    const bobApp = restart(bob, proxy.url); // loads the chain afresh: the fork
    const inFork = await outcome(bobApp.client.messages.send(chatId, 'sent in the fork'));
    expect(serveFork.fired).toBeGreaterThan(0);
    // Bob may not be able to tell yet (the fork extends what he verified), or may already see it (alice's messages name the real record).
    expect(['ok', 'group_forked']).toContain(inFork);
    if (inFork === 'ok') {
      expect(keep.fired).toBe(1);
      expect(kept[0].epoch).toBe(2);
    } else {
      expect(keep.fired).toBe(0);
    }
    keep.remove();

    // The fork is withdrawn; alice moves on to epoch 3 on the real chain.
    serveFork.remove();
    await alice.client.chats.rotate(chatId);
    const posts = () => proxy.log.filter((x) => x.method === 'POST' && x.path === `/v1/chats/${chatId}/messages` && x.deviceId === bob.deviceId).length; // attempts, refused or not: a client in a fork alert sends nothing
    // bobApp still holds the fork in memory: its first attempt goes out under it and the server's refusal
    // (stale epoch) makes it sync, which shows the fork: at most that one attempt, then group_forked.
    // A fresh client (or bobApp again) sees the fork before it sends anything.
    for (const [app, allowed] of [[bobApp, 1], [restart(bob, proxy.url), 0], [bobApp, 0]] as const) {
      const sent = posts();
      const err = await failure(app.client.messages.send(chatId, 'after the fork'));
      expect(err).toBeInstanceOf(BilTrustError);
      expect(err.code).toBe('group_forked');
      expect(err.details).toMatchObject({ chat_id: chatId, epoch: 2 });
      expect(posts() - sent).toBeLessThanOrEqual(allowed);
    }
    // What bob verified before the fork still reads (a naive client marks the whole group "cannot decrypt").
    const history = await restart(bob, proxy.url).client.messages.history(chatId);
    expect(texts(history.messages)[0]).toBe('before the fork');

    // Alice, on the real chain, can't read what bob sent in the fork (if he could send).
    if (kept.length) {
      const show = proxy.onResponse("bob's fork message for alice", { method: 'GET', path: paths.messages(chatId), userId: alice.userId }, (res) => ({ body: { ...res.body, messages: kept, has_more: false } }));
      const seen = await alice.client.messages.history(chatId, { after: 999 });
      expect(show.fired).toBe(1);
      expect(seen.messages.map((m) => m.ok)).toEqual([false]);
    }
  });
});
