// Issue 17 item 3: delete for everyone is the sender's signed statement. A
// server that erases a message on its own, strips the tombstone of a real
// deletion, forges one, or moves a real tombstone onto another message can
// hide ciphertext (it always could) but can't make members' clients show the
// deletion as the sender's: they show `removed_by_server`.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { paths, registerAll, type Person } from '../harness/clients.js';
import { startProxy, type Json, type MaliciousGateway } from '../harness/proxy.js';

describe('the server forges, strips or moves tombstones', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let chatId: string;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
    chatId = (await alice.client.chats.createPersonal(bob.userId)).chatId;
  });
  afterEach(() => proxy.reset());
  afterAll(async () => {
    await proxy?.close();
  });

  /** Bob's history pages with `edit` applied to the message at `seq`. */
  const rewrite = (name: string, seq: number, edit: (m: Json) => Json) =>
    proxy.onResponse(name, { method: 'GET', path: paths.messages(chatId), userId: bob.userId }, (res) => ({
      body: { ...res.body, messages: (res.body.messages as Json[]).map((m) => (m.seq === seq ? edit(m) : m)) },
    }));
  const shown = async (seq: number) => {
    const page = await bob.client.messages.history(chatId, { after: seq - 1, limit: 1 });
    const m = page.messages.find((x) => x.seq === seq)!;
    return m.ok ? `text:${m.text}` : m.error;
  };

  it('an honest deletion verifies: deleted_by_sender', async () => {
    const sent = await alice.client.messages.send(chatId, 'delete me');
    await alice.client.chats.deleteForEveryone(chatId, sent.messageId);
    expect(await shown(sent.seq)).toBe('deleted_by_sender');
  });

  it("a message the server erases on its own, with a forged tombstone in the sender's name: removed_by_server", async () => {
    const sent = await alice.client.messages.send(chatId, 'the server hides this');
    const forged = {
      payload: { type: 'bil.message-delete.v1', chat_id: chatId, message_id: sent.messageId, sender_user_id: alice.userId, sender_device_id: alice.deviceId, deleted_at: Date.now() },
      signature: 'A'.repeat(86),
    };
    const rule = rewrite('forge a tombstone', sent.seq, ({ envelope: _e, ...m }) => ({ ...m, removed: true, wrapped_key: '', tombstone: forged }));
    expect(await shown(sent.seq)).toBe('removed_by_server');
    expect(rule.fired).toBeGreaterThan(0);
  });

  it('a real tombstone stripped, or moved onto another message: removed_by_server', async () => {
    const deleted = await alice.client.messages.send(chatId, 'really deleted');
    const other = await alice.client.messages.send(chatId, 'not deleted');
    await alice.client.chats.deleteForEveryone(chatId, deleted.messageId);
    const real = (await bob.client.messages.history(chatId, { after: deleted.seq - 1, limit: 1 })).messages[0]!;
    expect(real).toMatchObject({ ok: false, error: 'deleted_by_sender' });

    rewrite('strip the tombstone', deleted.seq, ({ tombstone: _t, ...m }) => m);
    expect(await shown(deleted.seq)).toBe('removed_by_server');
    proxy.reset();

    // Take the verified tombstone of `deleted` and show `other` as removed with it.
    let tombstone: Json;
    proxy.onResponse('read the real tombstone', { method: 'GET', path: paths.messages(chatId), userId: bob.userId }, (res) => {
      tombstone = (res.body.messages as Json[]).find((m) => m.seq === deleted.seq)?.tombstone ?? tombstone;
      return undefined;
    });
    await bob.client.messages.history(chatId, { after: deleted.seq - 1, limit: 1 });
    expect(tombstone).toBeDefined();
    proxy.reset();
    rewrite('move the tombstone', other.seq, ({ envelope: _e, ...m }) => ({ ...m, removed: true, wrapped_key: '', tombstone }));
    expect(await shown(other.seq)).toBe('removed_by_server');
  });
});
