// Issue 12, "Why" 7: the personal-chat peer is whatever the server says.
// The server repoints alice's verified chat with bob to mallory
// (`peer_user_id` in the chat JSON), or answers "open the chat with bob" with
// the id of alice's chat with mallory. Step 8: clients recompute the personal
// chat id from the two user ids and refuse a mismatch (BilTrustError
// `chat_id_mismatch`; the CLI exits 7); nothing is wrapped to mallory.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { BilTrustError } from '@bil/sdk/node';
import { chatKnowsDevices, cli, failure, link, outcome, registerAll, restart, unique, type Person } from '../harness/clients.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

describe('a personal chat repointed to someone else', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let mallory: Person;
  let withBob: string;
  let withMallory: string;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob, mallory] = await registerAll(proxy.url, 'alice', 'bob', 'mallory');
    withBob = (await alice.client.chats.createPersonal(bob.userId)).chatId;
    withMallory = (await alice.client.chats.createPersonal(mallory.userId)).chatId;
    await alice.client.messages.send(withBob, 'hi bob');
  });
  afterEach(() => proxy.reset());
  afterAll(() => proxy?.close());

  /** Rewrites every chat object with id `chatId` in a chat answer (single, list, create) for `userId`. */
  const rewriteChat = (name: string, userId: string, chatId: string, edit: (chat: Json) => Json) =>
    proxy.onResponse(name, { path: /^\/v1\/chats(\/[0-9a-f-]{36})?$/, userId }, (res) => {
      if (res.body?.chat?.chat_id === chatId) return { body: { ...res.body, chat: edit(res.body.chat) } };
      if (Array.isArray(res.body?.chats) && res.body.chats.some((c: Json) => c.chat_id === chatId)) {
        return { body: { ...res.body, chats: res.body.chats.map((c: Json) => (c.chat_id === chatId ? edit(c) : c)) } };
      }
      return undefined;
    });
  const wrappedTo = (from: number) =>
    proxy.log
      .slice(from)
      .filter((x) => x.userId === alice.userId && x.method === 'POST' && /\/messages$/.test(x.path))
      .flatMap((x) => (JSON.parse(x.forwardedBody).wrapped_keys as Json[]).map((k) => k.device_id as string));

  it('the chat with bob now names mallory as the peer, to a device that never opened it: chat_id_mismatch, nothing wrapped to mallory', async () => {
    const phone = await link(proxy.url, alice, 'phone');
    await chatKnowsDevices(inject('databaseUrl'), [phone.deviceId]);
    const rule = rewriteChat('peer is mallory', alice.userId, withBob, (c) => ({ ...c, peer_user_id: mallory.userId }));
    const from = proxy.log.length;
    const err = await failure(phone.client.messages.send(withBob, 'for bob'));
    expect(rule.fired).toBeGreaterThan(0);
    expect(wrappedTo(from)).not.toContain(mallory.deviceId);
    expect(err).toBeInstanceOf(BilTrustError);
    expect(err.code).toBe('chat_id_mismatch');
  });

  it('the same rewrite to the device that verified the chat before: it keeps bob (or refuses); nothing wrapped to mallory', async () => {
    rewriteChat('peer is mallory', alice.userId, withBob, (c) => ({ ...c, peer_user_id: mallory.userId }));
    const from = proxy.log.length;
    const result = await outcome(restart(alice, proxy.url).client.messages.send(withBob, 'for bob'));
    expect(wrappedTo(from)).not.toContain(mallory.deviceId);
    expect(['ok', 'chat_id_mismatch']).toContain(result);
  });

  it('"open my chat with bob" answered with the chat with mallory: chat_id_mismatch', async () => {
    const rule = proxy.onResponse('the chat with mallory, called bob', { method: 'POST', path: /^\/v1\/chats$/, userId: alice.userId }, async (res) => {
      if (res.body?.chat?.peer_user_id !== bob.userId) return undefined;
      return { body: { chat: { ...res.body.chat, chat_id: withMallory } } };
    });
    const app = restart(alice, proxy.url);
    const from = proxy.log.length;
    const result = await outcome(app.client.chats.createPersonal(bob.userId).then((c) => app.client.messages.send(c.chatId, 'for bob')));
    expect(rule.fired).toBe(1);
    expect(wrappedTo(from)).not.toContain(mallory.deviceId);
    expect(result).toBe('chat_id_mismatch');
  });

  it('bil send into a repointed chat: exit 7, chat_id_mismatch, nothing sent', async () => {
    const bil = cli(proxy.url);
    try {
      expect((await bil('register', unique('dora'))).code).toBe(0);
      const dora = (await bil.json('whoami')).json as { userId: string; deviceId: string };
      await chatKnowsDevices(inject('databaseUrl'), [dora.deviceId]);
      const created = await bil.json('chat', 'create', '--personal', bob.userId);
      expect(created.code, created.stderr).toBe(0);
      const chatId = (created.json as { chatId: string }).chatId;
      rewriteChat('peer is mallory (CLI)', dora.userId, chatId, (c) => ({ ...c, peer_user_id: mallory.userId }));
      const from = proxy.log.length;
      const r = await bil('send', chatId, 'for bob');
      // A naive CLI wraps the message key to mallory's device (the real chat service then refuses it: a malicious one wouldn't).
      expect(proxy.log.slice(from).filter((x) => x.method === 'POST' && x.forwardedBody.includes(mallory.deviceId))).toEqual([]);
      expect(r.code, r.stderr).toBe(7);
      expect(r.stderr).toContain('chat_id_mismatch');
    } finally {
      bil.cleanup();
    }
  });
});
