// Delete for everyone and disappearing messages on the real PostgreSQL
// (issue #17 items 3 and 4): the ciphertext and keys leave the database, the
// row stays as a tombstone, only the sender deletes, only admins set a
// group's timer, expired messages are never returned and the job erases them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID, sign } from 'node:crypto';
import { EventStore, ManualClock, createLogger, type AppError, type Database } from '@bil/runtime';
import { canonicalize } from '@bil/crypto/protocol';
import { chatReadModels } from '../projections/read-models.js';
import { ChatApp } from '../chat-app.js';
import { eraseExpired } from './expiry.js';
import { actorOf, envelope, epochRecord, openChatDb, seedDirectory, uuidv7, type TestDevice, type TestUser } from '../../test-support.js';

let t: Awaited<ReturnType<typeof openChatDb>>;
let db: Database;
const clock = new ManualClock('2030-01-01T00:00:00.000Z');
let app: ChatApp;

beforeAll(async () => {
  t = await openChatDb('chatretention', 4);
  db = t.db;
  app = new ChatApp(db, new EventStore(db, [chatReadModels]), { maxGroupMembers: 8 }, createLogger('retention-test', 'silent'), clock);
});

afterAll(() => t?.close());

function tombstone(chatId: string, messageId: string, device: TestDevice, over: Record<string, unknown> = {}): string {
  const payload = {
    type: 'bil.message-delete.v1',
    chat_id: chatId,
    message_id: messageId,
    sender_user_id: device.userId,
    sender_device_id: device.deviceId,
    deleted_at: Date.now(),
    ...over,
  };
  return JSON.stringify({ payload, signature: sign(null, Buffer.from(canonicalize(payload), 'utf8'), device.privateKey).toString('base64url') });
}

function timerStatement(chatId: string, device: TestDevice, ms: number, version: number, over: Record<string, unknown> = {}): string {
  const payload = {
    type: 'bil.chat-timer.v1',
    chat_id: chatId,
    disappearing_ms: ms,
    version,
    set_by_user_id: device.userId,
    set_by_device_id: device.deviceId,
    created_at: Date.now(),
    ...over,
  };
  return JSON.stringify({ payload, signature: sign(null, Buffer.from(canonicalize(payload), 'utf8'), device.privateKey).toString('base64url') });
}

async function group(users: TestUser[]): Promise<{ chatId: string; head: string }> {
  const owner = users[0]!.devices[0]!;
  const chatId = randomUUID();
  const genesis = epochRecord(chatId, 1, '', users.map((user, i) => ({ user, admin: i === 0 })), owner);
  await app.createGroup(actorOf(owner), {
    chatId,
    members: users.slice(1).map((u) => ({ userId: u.userId, role: 'member' as const })),
    epochRecord: genesis.record,
    epochKeys: genesis.keys,
  });
  return { chatId, head: genesis.hash };
}

async function post(chatId: string, head: string, sender: TestDevice): Promise<{ messageId: string; seq: number }> {
  const messageId = uuidv7();
  const r = await app.sendMessage(actorOf(sender), {
    chatId,
    messageId,
    envelope: envelope({ chatId, messageId, sender, scheme: 'group', epoch: 1, epochHash: head }),
    wrappedKeys: [],
  });
  return { messageId, seq: r.seq };
}

async function stored(chatId: string, seq: number) {
  const [row] = await db.query<{ removed: boolean; has_envelope: boolean; keys: string; tombstone: unknown }>(
    `SELECT m.removed, (e.data->'envelope' IS NOT NULL) AS has_envelope, m.tombstone,
            (SELECT count(*) FROM chat.message_keys k WHERE k.chat_id = m.chat_id AND k.seq = m.seq) AS keys
     FROM chat.messages m JOIN chat.events e ON e.position = m.event_position WHERE m.chat_id = ? AND m.seq = ?`,
    [chatId, seq],
  );
  return row!;
}

const code = async (p: Promise<unknown>) => ((await p.then(() => null, (e: unknown) => e)) as AppError | null)?.code;

describe('delete for everyone', () => {
  it('erases the ciphertext, keeps a removed row with the tombstone, and history/unread return it as removed', async () => {
    const users = await seedDirectory(db, 2);
    const [alice, bob] = [users[0]!.devices[0]!, users[1]!.devices[0]!];
    const { chatId, head } = await group(users);
    const first = await post(chatId, head, alice);
    const second = await post(chatId, head, alice);
    const t1 = tombstone(chatId, first.messageId, alice);
    expect(await app.deleteMessage(actorOf(alice), { chatId, messageId: first.messageId, tombstone: t1 })).toEqual({ seq: first.seq, deleted: true });
    expect(await app.deleteMessage(actorOf(alice), { chatId, messageId: first.messageId, tombstone: t1 })).toEqual({ seq: first.seq, deleted: false });

    const row = await stored(chatId, first.seq);
    expect(row.removed).toBe(true);
    expect(row.has_envelope).toBe(false);
    expect(row.tombstone).toEqual(JSON.parse(t1));
    expect((await stored(chatId, second.seq)).has_envelope).toBe(true);

    const page = await app.listMessages(actorOf(bob), { chatId, afterSeq: 0, limit: 10 });
    expect(page.messages.map((m) => [m.seq, m.removed])).toEqual([
      [first.seq, true],
      [second.seq, false],
    ]);
    expect(page.messages[0]).toMatchObject({ envelope: '', wrappedKey: '', messageId: first.messageId });
    expect(JSON.parse(page.messages[0]!.tombstone)).toEqual(JSON.parse(t1));
    const unread = await app.getUnread(actorOf(bob), { limit: 10, maxEnvelopesPerChat: 10 });
    const chat = unread.chats.find((c) => c.chatId === chatId)!;
    expect(chat.newestUnread.map((m) => [m.seq, m.removed, m.envelope === ''])).toEqual([
      [first.seq, true, true],
      [second.seq, false, false],
    ]);
  });

  it("releases the message's attachments (message_blobs rows) in the same transaction", async () => {
    const users = await seedDirectory(db, 2);
    const alice = users[0]!.devices[0]!;
    const { chatId, head } = await group(users);
    const m = await post(chatId, head, alice);
    await db.query(`INSERT INTO chat.message_blobs (chat_id, seq, blob_id) VALUES (?, ?, ?)`, [chatId, m.seq, randomUUID()]);
    await app.deleteMessage(actorOf(alice), { chatId, messageId: m.messageId, tombstone: tombstone(chatId, m.messageId, alice) });
    const [left] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM chat.message_blobs WHERE chat_id = ?`, [chatId]);
    expect(Number(left!.n)).toBe(0);
  });

  it('only the sender may delete; the tombstone must name the message, the caller, and verify', async () => {
    const users = await seedDirectory(db, 2);
    const [alice, bob] = [users[0]!.devices[0]!, users[1]!.devices[0]!];
    const { chatId, head } = await group(users);
    const m = await post(chatId, head, alice);
    expect(await code(app.deleteMessage(actorOf(bob), { chatId, messageId: m.messageId, tombstone: tombstone(chatId, m.messageId, bob) }))).toBe('not_the_sender');
    const other = uuidv7();
    expect(await code(app.deleteMessage(actorOf(alice), { chatId, messageId: m.messageId, tombstone: tombstone(chatId, other, alice) }))).toBe('tombstone_mismatch');
    expect(await code(app.deleteMessage(actorOf(alice), { chatId, messageId: other, tombstone: tombstone(chatId, other, alice) }))).toBe('message_not_found');
    const forged = JSON.parse(tombstone(chatId, m.messageId, alice)) as { payload: Record<string, unknown>; signature: string };
    forged.payload.deleted_at = 1;
    expect(await code(app.deleteMessage(actorOf(alice), { chatId, messageId: m.messageId, tombstone: JSON.stringify(forged) }))).toBe('invalid_tombstone_signature');
    expect(await code(app.deleteMessage(actorOf(alice), { chatId, messageId: m.messageId, tombstone: '{"payload":{}}' }))).toBe('invalid_tombstone');
    expect(await code(app.deleteMessage(actorOf(alice), { chatId, messageId: m.messageId, tombstone: 'x'.repeat(5000) }))).toBe('tombstone_too_large');
    const [outsider] = await seedDirectory(db, 1);
    const o = outsider!.devices[0]!;
    expect(await code(app.deleteMessage(actorOf(o), { chatId, messageId: m.messageId, tombstone: tombstone(chatId, m.messageId, o) }))).toBe('chat_not_found');
    expect((await stored(chatId, m.seq)).has_envelope).toBe(true);
  });
});

describe('disappearing messages', () => {
  it('in groups only admins set the timer; bounds are checked; GetChat returns it', async () => {
    const users = await seedDirectory(db, 2);
    const [owner, member] = [users[0]!.devices[0]!, users[1]!.devices[0]!];
    const { chatId } = await group(users);
    expect(await code(app.setDisappearingTimer(actorOf(member), { chatId, disappearingMs: 60_000 }))).toBe('not_an_admin');
    expect(await code(app.setDisappearingTimer(actorOf(owner), { chatId, disappearingMs: 5 }))).toBe('invalid_disappearing_ms');
    expect(await code(app.setDisappearingTimer(actorOf(owner), { chatId, disappearingMs: 400 * 24 * 3600 * 1000 }))).toBe('invalid_disappearing_ms');
    expect((await app.setDisappearingTimer(actorOf(owner), { chatId, disappearingMs: 60_000 })).disappearingMs).toBe(60_000);
    expect((await app.getChat(actorOf(member), chatId)).disappearingMs).toBe(60_000);
    // A group's signed timer is in its metadata: a personal-chat statement is refused, and none is returned.
    expect(await code(app.setDisappearingTimer(actorOf(owner), { chatId, disappearingMs: 60_000, timerStatement: timerStatement(chatId, owner, 60_000, 1) }))).toBe(
      'timer_statement_mismatch',
    );
    expect((await app.getChat(actorOf(member), chatId)).timerStatement).toBe('');
  });

  it("personal chats: the setter's signed statement is required, checked, stored and returned; stale versions refused", async () => {
    const users = await seedDirectory(db, 3);
    const [alice, bob, carol] = [users[0]!.devices[0]!, users[1]!.devices[0]!, users[2]!.devices[0]!];
    const { chat } = await app.createPersonalChat(actorOf(alice), bob.userId);
    const chatId = chat.chatId;
    const set = (d: TestDevice, ms: number, statement?: string) => app.setDisappearingTimer(actorOf(d), { chatId, disappearingMs: ms, timerStatement: statement });
    expect(await code(set(alice, 60_000))).toBe('invalid_timer_statement');
    expect(await code(set(alice, 60_000, '{"payload":{}}'))).toBe('invalid_timer_statement');
    expect(await code(set(alice, 60_000, 'x'.repeat(5000)))).toBe('timer_statement_too_large');
    expect(await code(set(alice, 60_000, timerStatement(chatId, alice, 120_000, 1)))).toBe('timer_statement_mismatch');
    expect(await code(set(alice, 60_000, timerStatement(randomUUID(), alice, 60_000, 1)))).toBe('timer_statement_mismatch');
    // Bob's statement sent by alice: not her device's signature.
    expect(await code(set(alice, 60_000, timerStatement(chatId, bob, 60_000, 1)))).toBe('invalid_timer_statement_signature');
    expect(await code(set(alice, 60_000, timerStatement(chatId, alice, 60_000, 1, { set_by_user_id: bob.userId })))).toBe('timer_statement_mismatch');
    const forged = JSON.parse(timerStatement(chatId, alice, 60_000, 1)) as { payload: Record<string, unknown>; signature: string };
    forged.payload.version = 2;
    expect(await code(set(alice, 60_000, JSON.stringify(forged)))).toBe('invalid_timer_statement_signature');
    expect(await code(set(carol, 60_000, timerStatement(chatId, carol, 60_000, 1)))).toBe('chat_not_found');

    const first = timerStatement(chatId, alice, 60_000, 1);
    const view = await set(alice, 60_000, first);
    expect(view.disappearingMs).toBe(60_000);
    expect(JSON.parse(view.timerStatement)).toEqual(JSON.parse(first));
    // Bob's change must rise above alice's version; the same or a lower one is stale (a replay).
    expect(await code(set(bob, 0, timerStatement(chatId, bob, 0, 1)))).toBe('timer_statement_stale');
    expect(await code(set(alice, 60_000, first))).toBe('timer_statement_stale');
    const second = timerStatement(chatId, bob, 0, 2);
    expect((await set(bob, 0, second)).disappearingMs).toBe(0);
    const seen = await app.getChat(actorOf(alice), chatId);
    expect(JSON.parse(seen.timerStatement)).toEqual(JSON.parse(second));
    expect((await app.listChats(actorOf(alice), { type: undefined, limit: 10, pageToken: '' })).chats.find((c) => c.chatId === chatId)?.timerStatement).toBe(seen.timerStatement);
  });

  it('messages get expires_at, are never returned once expired, and the job erases them', async () => {
    const users = await seedDirectory(db, 2);
    const [owner, member] = [users[0]!.devices[0]!, users[1]!.devices[0]!];
    const { chatId, head } = await group(users);
    const kept = await post(chatId, head, owner);
    await app.setDisappearingTimer(actorOf(owner), { chatId, disappearingMs: 60_000 });
    const fading = await post(chatId, head, member);
    const page = await app.listMessages(actorOf(member), { chatId, afterSeq: 0, limit: 10 });
    expect(page.messages.map((m) => [m.seq, m.expiresAt])).toEqual([
      [kept.seq, ''],
      [fading.seq, new Date(clock.now().getTime() + 60_000).toISOString()],
    ]);

    clock.advance(61_000);
    // Expired, not yet erased: never returned.
    expect((await app.listMessages(actorOf(owner), { chatId, afterSeq: 0, limit: 10 })).messages.map((m) => m.seq)).toEqual([kept.seq]);
    const unread = await app.getUnread(actorOf(owner), { limit: 10, maxEnvelopesPerChat: 10 });
    expect(unread.chats.find((c) => c.chatId === chatId)?.newestUnread.map((m) => m.seq) ?? []).not.toContain(fading.seq);
    expect((await stored(chatId, fading.seq)).has_envelope).toBe(true);

    let erased = 0;
    for (let n = await eraseExpired(db, clock); n > 0; n = await eraseExpired(db, clock)) erased += n;
    expect(erased).toBeGreaterThanOrEqual(1);
    const row = await stored(chatId, fading.seq);
    expect(row).toMatchObject({ removed: true, has_envelope: false, tombstone: null });
    expect((await stored(chatId, kept.seq)).has_envelope).toBe(true);
  });

  it('two expiry runs at once erase each message once (SKIP LOCKED), neither waits for the other', async () => {
    const users = await seedDirectory(db, 2);
    const owner = users[0]!.devices[0]!;
    const { chatId, head } = await group(users);
    await app.setDisappearingTimer(actorOf(owner), { chatId, disappearingMs: 30_000 });
    for (let i = 0; i < 6; i++) await post(chatId, head, owner);
    clock.advance(31_000);
    const [a, b] = await Promise.all([eraseExpired(db, clock, 4), eraseExpired(db, clock, 4)]);
    let rest = 0;
    for (let n = await eraseExpired(db, clock); n > 0; n = await eraseExpired(db, clock)) rest += n;
    expect(a + b + rest).toBe(6);
    const [left] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM chat.messages WHERE chat_id = ? AND NOT removed`, [chatId]);
    expect(Number(left!.n)).toBe(0);
  });
});

describe('rebuild', () => {
  it('rebuilds the read models equal to the live ones: deleted and expired messages stay removed, tombstones and timers kept', async () => {
    const store = new EventStore(db, [chatReadModels]);
    const tables = ['chats', 'messages', 'message_keys'];
    const dump = async () =>
      Object.fromEntries(
        await Promise.all(tables.map(async (t) => [t, await db.query(`SELECT to_jsonb(x) AS row FROM chat.${t} x ORDER BY to_jsonb(x)::text`)] as const)),
      );
    const live = await dump();
    const [removed] = await db.query<{ n: string; tombstones: string }>(`SELECT count(*) AS n, count(tombstone) AS tombstones FROM chat.messages WHERE removed`);
    expect(Number(removed!.n)).toBeGreaterThan(Number(removed!.tombstones));
    expect(Number(removed!.tombstones)).toBeGreaterThan(0);
    await store.rebuildProjections(7);
    expect(await dump()).toEqual(live);
  });
});
