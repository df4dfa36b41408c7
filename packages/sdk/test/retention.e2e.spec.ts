// Delete for everyone and disappearing messages through the real identity +
// chat + gateway (issue #17 items 3 and 4): the sender's signed tombstone
// erases the ciphertext for everyone and members' clients attribute the
// deletion only when it verifies; a chat's timer makes messages vanish from
// history before and after the expiry job erases them from the database.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BilApiError } from '../src/index.js';
import { people, type Device } from './people.js';
import { chatStackBuilt, startStack, type Stack } from './stack.js';

describe.skipIf(!chatStackBuilt)('@bil/sdk delete for everyone and disappearing messages (e2e)', () => {
  let stack: Stack;
  let alice: Device;
  let bob: Device;
  const { register } = people(() => stack.baseUrl);

  const query = async (sql: string, params: unknown[]) => {
    const db = new pg.Client({ connectionString: stack.env.databaseUrl });
    await db.connect();
    try {
      return (await db.query(sql, params)).rows;
    } finally {
      await db.end();
    }
  };
  /** Whether the message's ciphertext (its event's envelope) and wrapped keys are still stored. */
  const storedCiphertext = async (chatId: string, seq: number) =>
    (
      await query(
        `SELECT (e.data->'envelope' IS NOT NULL) AS envelope, m.removed,
                (SELECT count(*) FROM chat.message_keys k WHERE k.chat_id = m.chat_id AND k.seq = m.seq)::int AS keys
         FROM chat.messages m JOIN chat.events e ON e.position = m.event_position WHERE m.chat_id = $1 AND m.seq = $2`,
        [chatId, seq],
      )
    )[0] as { envelope: boolean; removed: boolean; keys: number };

  beforeAll(async () => {
    stack = await startStack({}, { chat: true, chatEnv: { CHAT_EXPIRY_INTERVAL_MS: '200' } });
    [alice, bob] = await Promise.all([register('alice'), register('bob')]);
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
  });

  it('the sender deletes for everyone: ciphertext and keys erased, history shows deleted_by_sender; nobody else may', async () => {
    const chat = await alice.client.chats.createPersonal(bob.account.userId);
    const gone = await alice.client.messages.send(chat.chatId, 'oops, wrong chat');
    const kept = await alice.client.messages.send(chat.chatId, 'this one stays');
    expect(await storedCiphertext(chat.chatId, gone.seq)).toMatchObject({ envelope: true, keys: 2 });

    const err = await bob.client.chats.deleteForEveryone(chat.chatId, gone.messageId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BilApiError);
    expect(err).toMatchObject({ status: 403, code: 'not_the_sender' });

    expect(await alice.client.chats.deleteForEveryone(chat.chatId, gone.messageId)).toEqual({ seq: gone.seq, deleted: true });
    expect(await storedCiphertext(chat.chatId, gone.seq)).toEqual({ envelope: false, removed: true, keys: 0 });

    const page = await bob.client.messages.history(chat.chatId);
    expect(page.messages.map((m) => [m.seq, m.ok ? m.text : m.error])).toEqual([
      [gone.seq, 'deleted_by_sender'],
      [kept.seq, 'this one stays'],
    ]);
    // Catch-up (forwards from a cursor) and unread show it the same way.
    const after = await bob.client.messages.history(chat.chatId, { after: 0 });
    expect(after.messages.find((m) => m.seq === gone.seq)).toMatchObject({ ok: false, error: 'deleted_by_sender' });
    const unread = await bob.client.unread({ messagesPerChat: 10 });
    const mine = unread.chats.find((c) => c.chatId === chat.chatId);
    expect(mine?.messages.find((m) => m.seq === gone.seq)).toMatchObject({ ok: false, error: 'deleted_by_sender' });
  });

  it('a removed message without a verifiable tombstone is removed_by_server, not attributed to the sender', async () => {
    const chat = await alice.client.chats.createPersonal(bob.account.userId);
    const sent = await alice.client.messages.send(chat.chatId, 'erased by someone else');
    // The server (here: a direct write, as a malicious operator could) erases it and shows a forged tombstone.
    await query(`UPDATE chat.messages SET removed = true, tombstone = $3 WHERE chat_id = $1 AND seq = $2`, [
      chat.chatId,
      sent.seq,
      JSON.stringify({
        payload: { type: 'bil.message-delete.v1', chat_id: chat.chatId, message_id: sent.messageId, sender_user_id: alice.account.userId, sender_device_id: alice.account.deviceId, deleted_at: 1 },
        signature: 'A'.repeat(86),
      }),
    ]);
    const page = await bob.client.messages.history(chat.chatId, { after: sent.seq - 1 });
    expect(page.messages.map((m) => [m.seq, m.ok ? m.text : m.error])).toEqual([[sent.seq, 'removed_by_server']]);
  });

  it('a timer: messages carry it, vanish from history once expired, and the expiry job erases them', async () => {
    const group = await alice.client.chats.createGroup({ title: 'Fading', members: [bob.account.userId] });
    // A group's timer is in the signed metadata of its next epoch record: only admins sign one.
    const err = await bob.client.chats.setTimer(group.chatId, 60_000).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'not_an_admin' });
    expect(await alice.client.chats.setTimer(group.chatId, 5).catch((e: unknown) => e)).toBeInstanceOf(TypeError);
    expect((await alice.client.chats.setTimer(group.chatId, 30_000)).timer).toEqual({ ms: 30_000, verified: true, serverMs: 30_000, mismatch: false, alert: null });
    expect((await bob.client.chats.get(group.chatId)).timer).toMatchObject({ ms: 30_000, verified: true, mismatch: false });
    const fading = await alice.client.messages.send(group.chatId, 'gone in 30 s');
    expect((await bob.client.messages.history(group.chatId)).messages.map((m) => m.ok && m.text)).toEqual(['gone in 30 s']);
    // Thirty seconds on, as the database sees it: the message's expiry moved into the past.
    await query(`UPDATE chat.messages SET expires_at = now() - interval '1 second' WHERE chat_id = $1 AND seq = $2`, [group.chatId, fading.seq]);
    const deadline = Date.now() + 10_000;
    while ((await storedCiphertext(group.chatId, fading.seq)).envelope && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await storedCiphertext(group.chatId, fading.seq)).toEqual({ envelope: false, removed: true, keys: 0 });
    expect((await bob.client.messages.history(group.chatId)).messages.map((m) => m.seq)).not.toContain(fading.seq);
  });

  it("a personal chat's timer: signed by the setter, verified by the other person; a server change is an alert, not the timer", async () => {
    const chat = await alice.client.chats.createPersonal(bob.account.userId);
    const set = await alice.client.chats.setTimer(chat.chatId, 60_000);
    expect(set.timer).toEqual({ ms: 60_000, verified: true, serverMs: 60_000, mismatch: false, alert: null });
    expect((await bob.client.chats.get(chat.chatId)).timer).toMatchObject({ ms: 60_000, verified: true, alert: null });
    // Bob switches it off: his statement's version rises above alice's.
    expect((await bob.client.chats.setTimer(chat.chatId, 0)).timer).toMatchObject({ ms: 0, verified: true, alert: null });
    const [row] = await query(`SELECT timer_statement FROM chat.chats WHERE chat_id = $1`, [chat.chatId]);
    expect(row.timer_statement.payload).toMatchObject({ version: 2, disappearing_ms: 0, set_by_user_id: bob.account.userId });
    // The server rewrites its own value: alice's client keeps the verified one and alerts.
    await query(`UPDATE chat.chats SET disappearing_ms = 30000 WHERE chat_id = $1`, [chat.chatId]);
    const alerts: unknown[] = [];
    const off = alice.client.on('timer-alert', (e) => alerts.push(e));
    expect((await alice.client.chats.get(chat.chatId)).timer).toEqual({ ms: 0, verified: true, serverMs: 30_000, mismatch: true, alert: 'server_differs' });
    off();
    expect(alerts).toEqual([{ chatId: chat.chatId, reason: 'server_differs', ms: 0, serverMs: 30_000 }]);
  });
});
