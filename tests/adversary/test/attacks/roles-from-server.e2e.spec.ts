// Issue 12, "Why" 1: roles and removals come from the server. When an admin's
// client builds the next epoch record (chats.rotate, members.add, or on its
// own after `epoch_rotation_required`), the server's GET /v1/chats/{id}
// answer promotes a member and drops another. Step 8: the next record is the
// verified head plus this user's own intent; the client refuses the server's
// claim (BilTrustError `server_change_unverified`) and publishes nothing.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { BilTrustError } from '@bil/sdk/node';
import { failure, paths, registerAll, restart, type Person } from '../harness/clients.js';
import { serverGet } from '../harness/forge.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

describe('the server dictates roles and removals to an admin', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let carol: Person;
  let dave: Person;
  let chatId: string;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob, carol, dave] = await registerAll(proxy.url, 'alice', 'bob', 'carol', 'dave');
    chatId = (await alice.client.chats.createGroup({ title: 'club', members: [bob.userId, carol.userId] })).chatId;
    await alice.client.messages.send(chatId, 'welcome');
  });
  afterEach(() => proxy.reset());
  afterAll(() => proxy?.close());

  /** Alice's view of the chat: bob promoted to admin, carol gone. */
  const promoteBobDropCarol = (extra: Json = {}) =>
    proxy.onResponse('bob is admin now, carol left', { method: 'GET', path: paths.chat(chatId), userId: alice.userId }, (res) => {
      if (res.status !== 200) return undefined;
      const members = (res.body.chat.members as Json[]).filter((m) => m.user_id !== carol.userId).map((m) => (m.user_id === bob.userId ? { ...m, role: 'admin' } : m));
      return { body: { chat: { ...res.body.chat, members, member_count: members.length, ...extra } } };
    });
  /** Everything alice's device published about the group's epochs or members. */
  const published = () => proxy.log.filter((x) => x.deviceId === alice.deviceId && x.method !== 'GET' && (paths.keys(chatId).test(x.path) || paths.members(chatId).test(x.path)));
  /** The members and roles of every epoch record alice's device signed and sent since `from` (log index). */
  const signedSince = (from: number) =>
    proxy.log
      .slice(from)
      .filter((x) => x.deviceId === alice.deviceId && x.method !== 'GET' && x.forwardedBody.includes('epoch_record'))
      .map((x) => Object.fromEntries((JSON.parse(x.forwardedBody).epoch_record.payload.members as Json[]).map((m) => [m.user_id, m.role])));
  const serverEpoch = async () => (await serverGet(alice, `/v1/chats/${chatId}/keys`)).current_epoch as number;

  it('chats.rotate: refused with server_change_unverified, nothing published', async () => {
    const rule = promoteBobDropCarol();
    const before = { published: published().length, epoch: await serverEpoch(), log: proxy.log.length };
    const err = await failure(restart(alice, proxy.url).client.chats.rotate(chatId));
    expect(rule.fired).toBeGreaterThan(0);
    // A naive client signs what the server dictates (bob admin, carol gone); the real chat service happens to refuse it, a malicious one would keep it.
    for (const roles of signedSince(before.log)) expect(roles).toMatchObject({ [alice.userId]: 'admin', [bob.userId]: 'member', [carol.userId]: 'member' });
    expect(err).toBeInstanceOf(BilTrustError);
    expect(err.code).toBe('server_change_unverified');
    expect(err.details).toMatchObject({ chat_id: chatId });
    expect(published()).toHaveLength(before.published);
    expect(await serverEpoch()).toBe(before.epoch);
  });

  it('members.add: the server may not ride along (a promotion and a removal alice never asked for)', async () => {
    const rule = promoteBobDropCarol();
    const before = { published: published().length, epoch: await serverEpoch(), log: proxy.log.length };
    const err = await failure(restart(alice, proxy.url).client.chats.members.add(chatId, [dave.userId]));
    expect(rule.fired).toBeGreaterThan(0);
    for (const roles of signedSince(before.log)) expect(roles).toMatchObject({ [bob.userId]: 'member', [carol.userId]: 'member' });
    expect(err).toBeInstanceOf(BilTrustError);
    expect(err.code).toBe('server_change_unverified');
    expect(published()).toHaveLength(before.published);
    expect(await serverEpoch()).toBe(before.epoch);
  });

  it('epoch_rotation_required on send, with no signed leave behind it: refused, nothing published, nothing sent', async () => {
    promoteBobDropCarol({ epoch_rotation_required: true });
    const refuse = proxy.reply('rotation required', { method: 'POST', path: paths.messages(chatId), userId: alice.userId }, () => ({
      status: 409,
      body: { error: { code: 'epoch_rotation_required', message: 'a member left: publish a new epoch first', details: {} } },
    }));
    const before = { published: published().length, epoch: await serverEpoch(), log: proxy.log.length };
    const err = await failure(restart(alice, proxy.url).client.messages.send(chatId, 'hello?'));
    expect(refuse.fired).toBeGreaterThan(0);
    for (const roles of signedSince(before.log)) expect(roles).toMatchObject({ [bob.userId]: 'member', [carol.userId]: 'member' });
    expect(err).toBeInstanceOf(BilTrustError);
    expect(err.code).toBe('server_change_unverified');
    expect(published()).toHaveLength(before.published);
    expect(await serverEpoch()).toBe(before.epoch);
  });

  it('honestly served, the same calls work (the refusals above were the attack, not the setup)', async () => {
    await restart(alice, proxy.url).client.chats.members.add(chatId, [dave.userId]);
    await alice.client.messages.send(chatId, 'hi dave');
  });
});
