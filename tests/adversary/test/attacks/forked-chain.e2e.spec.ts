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
import { failure, paths, registerAll, restart, texts, type Person } from '../harness/clients.js';
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
    // Bob can't tell yet: the fork extends what he verified. The server takes the message (epoch numbers match).
    const inFork = await bob.client.messages.send(chatId, 'sent in the fork');
    expect(serveFork.fired).toBeGreaterThan(0);
    expect(texts((await alice.client.messages.history(chatId, { after: inFork.seq - 1 })).messages)).toEqual(['<cannot_decrypt>']);

    // The fork is withdrawn; alice moves on to epoch 3 on the real chain.
    serveFork.remove();
    await alice.client.chats.rotate(chatId);
    const posts = () => proxy.log.filter((x) => x.method === 'POST' && x.path === `/v1/chats/${chatId}/messages` && x.deviceId === bob.deviceId && x.status < 300).length;
    const sent = posts();
    for (const app of [bob, restart(bob, proxy.url)]) {
      const err = await failure(app.client.messages.send(chatId, 'after the fork'));
      expect(err).toBeInstanceOf(BilTrustError);
      expect(err.code).toBe('group_forked');
      expect(err.details).toMatchObject({ chat_id: chatId, epoch: 2 });
    }
    expect(posts()).toBe(sent);
    // What bob verified before the fork still reads (a naive client marks the whole group "cannot decrypt").
    const history = await restart(bob, proxy.url).client.messages.history(chatId);
    expect(texts(history.messages)[0]).toBe('before the fork');
  });
});
