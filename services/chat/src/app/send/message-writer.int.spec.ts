// The group-committed send path on real PostgreSQL: concurrent sends share
// transactions without sharing failures, seqs stay gap-free, and every
// lookup is index-bound with or without planner statistics.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { identityEvent } from '@bil/proto/events';
import { expectSnapshotsEqualReplay, explainGenericPlan } from '@bil/testkit';
import { EventStore, createLogger, type AppError, type Database } from '@bil/runtime';
import { chatReadModels } from '../projections/read-models.js';
import { ChatApp } from '../chat-app.js';
import { SEND_READ_SQL, SEND_SQL } from './message-writer.js';
import { MESSAGES_PROJECTION_SQL } from '../projections/read-models.js';
import { chatDecider, chatStream } from '../../domain/chat/chat.js';
import { readsDecider } from '../../domain/reads/reads.js';
import { actorOf, openChatDb, b64, envelope, seedDirectory, uuidv7, type TestDevice } from '../../test-support.js';

let t: Awaited<ReturnType<typeof openChatDb>>;
let db: Database;
let app: ChatApp;
let commits = 0;

beforeAll(async () => {
  t = await openChatDb('chatwriter', 8);
  db = t.db;
  const store = new EventStore(db, [chatReadModels]);
  store.onCommitted(() => commits++);
  app = new ChatApp(db, store, { maxGroupMembers: 64 }, createLogger('chat-writer-test', 'silent'));
});

afterAll(() => t?.close());

const actor = actorOf;

/** The directory as the identity consumer fills it, written directly; one device per user. */
const seedUsers = async (n: number): Promise<TestDevice[]> => (await seedDirectory(db, n)).map((u) => u.devices[0]!);

function send(chatId: string, from: TestDevice, to: TestDevice, opts: { messageId?: string; keys?: TestDevice[] } = {}) {
  const messageId = opts.messageId ?? uuidv7();
  return app.sendMessage(actor(from), {
    chatId,
    messageId,
    envelope: envelope({ chatId, messageId, sender: from, scheme: 'direct', epoch: 0, recipientUserId: to.userId }),
    wrappedKeys: (opts.keys ?? [from, to]).map((d) => ({ deviceId: d.deviceId, wrappedKey: b64(384) })),
  });
}

async function outcome<T>(p: Promise<T>): Promise<T | { code: string }> {
  try {
    return await p;
  } catch (err) {
    return { code: (err as AppError).code ?? String(err) };
  }
}

async function seqs(chatId: string): Promise<number[]> {
  const rows = await db.query<{ seq: string }>(`SELECT seq FROM chat.messages WHERE chat_id = ? ORDER BY seq`, [chatId]);
  return rows.map((r) => Number(r.seq));
}

describe("the chats' states in memory (ChatStates)", () => {
  it('another replica changes a chat: the next send here decides on the new state, not the cached one', async () => {
    const [a, b] = await seedUsers(2);
    const ab = (await app.createPersonalChat(actor(a!), b!.userId)).chat.chatId;
    expect(await send(ab, a!, b!)).toMatchObject({ seq: 1 });
    // A second chat service on the same database applies b's account deletion (b leaves the chat).
    const other = new ChatApp(db, new EventStore(db, [chatReadModels]), { maxGroupMembers: 64 }, createLogger('chat-writer-test-2', 'silent'));
    const deleted = identityEvent('', 'user.deleted', { userId: b!.userId, occurredAt: new Date().toISOString() });
    await db.tx((tx) => other.applyIdentityEvent(tx, { subject: deleted.subject, payload: { ...deleted.payload }, eventId: randomUUID(), type: 'user.deleted', sequence: 1 }, ''));
    const [row] = await db.query<{ chat_version: number; version: number }>(
      `SELECT c.chat_version, s.version FROM chat.chats c JOIN chat.streams s ON s.stream_id = ? WHERE c.chat_id = ?`,
      [chatStream(ab), ab],
    );
    expect(row!.chat_version).toBe(row!.version);
    expect(await outcome(send(ab, a!, b!, { keys: [a!] }))).toEqual({ code: 'peer_left' });
    expect(await seqs(ab)).toEqual([1]);
  });
});

describe('group-committed sends', () => {
  it('commits concurrent sends of several chats together; refused sends fail alone and take no seq', async () => {
    const [a, b, c, d] = await seedUsers(4);
    const ab = (await app.createPersonalChat(actor(a!), b!.userId)).chat.chatId;
    const cd = (await app.createPersonalChat(actor(c!), d!.userId)).chat.chatId;
    const reused = uuidv7();
    await send(ab, a!, b!, { messageId: reused });
    const resent = uuidv7();
    const before = commits;
    // One tick: these join one batch.
    const results = await Promise.all([
      outcome(send(ab, a!, b!)),
      outcome(send(cd, c!, d!)),
      outcome(send(randomUUID(), a!, b!)), // no such chat
      outcome(send(ab, b!, a!, { keys: [b!] })), // a device missing from the wrapped keys
      outcome(send(cd, a!, b!)), // not a member
      outcome(send(cd, c!, d!, { messageId: reused })), // a's id, but c's device: fine
      outcome(send(ab, a!, b!, { messageId: reused })), // a resend: the first result
      outcome(send(ab, b!, a!, { messageId: resent })),
      outcome(send(ab, b!, a!, { messageId: resent })), // the same send twice in one batch
      outcome(send(ab, a!, b!)),
    ]);
    expect(results.map((r) => ('code' in r ? r.code : r.seq))).toEqual([2, 1, 'chat_not_found', 'mismatched_devices', 'chat_not_found', 2, 1, 3, 3, 4]);
    expect(results.map((r) => ('duplicate' in r ? r.duplicate : null))).toEqual([false, false, null, null, null, false, true, false, true, false]);
    // The accepted sends of both chats committed together (the in-batch resend was answered after).
    expect(commits - before).toBeLessThanOrEqual(2);
    expect(await seqs(ab)).toEqual([1, 2, 3, 4]);
    expect(await seqs(cd)).toEqual([1, 2]);
    const [chat] = await db.query<{ last_seq: string }>(`SELECT last_seq FROM chat.chats WHERE chat_id = ?`, [ab]);
    expect(Number(chat!.last_seq)).toBe(4);
    // The message logs keep version = seq without a stream state row per message.
    const log = await db.query<{ stream_version: number }>(`SELECT stream_version FROM chat.events WHERE stream_id = ? ORDER BY stream_version`, [`messages-${ab}`]);
    expect(log.map((r) => r.stream_version)).toEqual([1, 2, 3, 4]);
    expect(await db.query(`SELECT 1 FROM chat.streams WHERE stream_id = ?`, [`messages-${ab}`])).toHaveLength(0);
  });

  it('answers message_id_taken for an id the device used in another chat, in the same batch as its first use', async () => {
    const [a, b, c] = await seedUsers(3);
    const ab = (await app.createPersonalChat(actor(a!), b!.userId)).chat.chatId;
    const ac = (await app.createPersonalChat(actor(a!), c!.userId)).chat.chatId;
    const id = uuidv7();
    const [first, second] = await Promise.all([outcome(send(ab, a!, b!, { messageId: id })), outcome(send(ac, a!, c!, { messageId: id }))]);
    expect(first).toMatchObject({ seq: 1, duplicate: false });
    expect(second).toEqual({ code: 'message_id_taken' });
    expect(await seqs(ac)).toEqual([]);
  });

  it('when a statement fails the batch, retries each send alone: only the failing one fails', async () => {
    const [a, b, c, d] = await seedUsers(4);
    const ab = (await app.createPersonalChat(actor(a!), b!.userId)).chat.chatId;
    const cd = (await app.createPersonalChat(actor(c!), d!.userId)).chat.chatId;
    const poisoned = uuidv7();
    // A failure only PostgreSQL sees, as a constraint or an I/O error would be.
    await db.query(`CREATE FUNCTION chat.poison() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.message_id = '${poisoned}' THEN RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$`);
    await db.query(`CREATE TRIGGER poison BEFORE INSERT ON chat.messages FOR EACH ROW EXECUTE FUNCTION chat.poison()`);
    try {
      const results = await Promise.all([
        outcome(send(ab, a!, b!)),
        outcome(send(cd, c!, d!, { messageId: poisoned })),
        outcome(send(cd, d!, c!)),
        outcome(send(ab, b!, a!)),
      ]);
      expect(results[1]).toMatchObject({ code: expect.any(String) });
      expect(results.filter((r) => 'seq' in r).map((r) => (r as { seq: number }).seq).sort()).toEqual([1, 1, 2]);
      expect(await seqs(ab)).toEqual([1, 2]);
      expect(await seqs(cd)).toEqual([1]);
    } finally {
      await db.query(`DROP TRIGGER poison ON chat.messages`);
      await db.query(`DROP FUNCTION chat.poison()`);
    }
  });

  it('keeps one hot chat gap-free under many concurrent sends', async () => {
    const [a, b] = await seedUsers(2);
    const ab = (await app.createPersonalChat(actor(a!), b!.userId)).chat.chatId;
    const results = await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 ? send(ab, a!, b!) : send(ab, b!, a!))));
    expect(results.map((r) => r.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(await seqs(ab)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
  });
});

describe('stored chat states of an older state version', () => {
  it('sends on a chat whose state was stored under another state version: rebuilt from its events (evolve) first, and stored', async () => {
    const [a, b] = await seedUsers(2);
    const chatId = (await app.createPersonalChat(actor(a!), b!.userId)).chat.chatId;
    const [before] = await db.query<{ state: unknown }>(`SELECT state FROM chat.streams WHERE stream_id = ?`, [chatStream(chatId)]);
    // As an older decider would have left it: another version stamp, another shape.
    await db.query(`UPDATE chat.streams SET state = '{"legacy": true}'::jsonb, state_version = 0 WHERE stream_id = ?`, [chatStream(chatId)]);
    expect(await outcome(send(chatId, a!, b!))).toMatchObject({ seq: 1, duplicate: false });
    const [after] = await db.query<{ state: unknown; state_version: number }>(`SELECT state, state_version FROM chat.streams WHERE stream_id = ?`, [chatStream(chatId)]);
    expect(after).toEqual({ state: before!.state, state_version: 1 });
    await expectSnapshotsEqualReplay(db, 'chat', { 'chat-': chatDecider, 'reads-': readsDecider });
  });
});

describe('send path plans', () => {
  type Node = { 'Node Type': string; 'Relation Name'?: string; Plans?: Node[] };
  const nodes = (n: Node): Node[] => [n, ...(n.Plans ?? []).flatMap(nodes)];
  // The plan for these values, and the generic plan that Database.pipelined runs (planned once per
  // connection without the values: it must be index-bound too).
  async function seqScans(sql: string, params: string[]): Promise<string[]> {
    const [custom] = await db.query<{ 'QUERY PLAN': Array<{ Plan: Node }> }>(`EXPLAIN (FORMAT JSON) ${sql}`, params);
    let n = 0;
    const generic = await explainGenericPlan<Node>(db, sql.replace(/\?/g, () => `$${++n}`), params);
    return [custom!['QUERY PLAN'][0]!.Plan, generic]
      .flatMap(nodes)
      .filter((n) => n['Node Type'] === 'Seq Scan')
      .map((n) => n['Relation Name'] ?? '')
      // The grown tables; chat.streams holds a handful of rows here, where a scan is the right plan once analysed.
      .filter((r) => r !== 'streams');
  }

  it('reads by index whatever the statistics: ~1,000 devices, before and after ANALYZE', async () => {
    const devices = await seedUsers(1000);
    const [a, b] = devices;
    const ab = (await app.createPersonalChat(actor(a!), b!.userId)).chat.chatId;
    for (let i = 0; i < 20; i++) await send(ab, a!, b!);
    // And ~1,000 other chats and messages (bare rows: only the tables' sizes matter here).
    await db.query(
      `INSERT INTO chat.chats (chat_id, type, created_by, created_at, status, last_activity_at)
       SELECT gen_random_uuid(), 'group', ?, now(), 'active', now() FROM generate_series(1, 1000)`,
      [a!.userId],
    );
    await db.query(
      `INSERT INTO chat.messages (chat_id, seq, message_id, sender_user_id, sender_device_id, epoch, event_position, created_at)
       SELECT ?, 1000 + g, gen_random_uuid(), ?, ?, 0, 0, now() FROM generate_series(1, 1000) g`,
      [ab, a!.userId, a!.deviceId],
    );
    const arr = (ids: string[]) => `{${ids.join(',')}}`;
    for (const stats of ['as loaded', 'after ANALYZE']) {
      if (stats === 'after ANALYZE') await db.query(`ANALYZE chat.directory_devices, chat.chats, chat.messages, chat.streams`);
      expect(await seqScans(SEND_SQL.directory, [arr([ab]), arr([a!.deviceId])]), stats).toEqual([]);
      expect(await seqScans(SEND_SQL.stored, [arr([a!.deviceId]), arr([uuidv7()])]), stats).toEqual([]);
      expect(await seqScans(SEND_SQL.lockChats, [arr([ab])]), stats).toEqual([]);
      // The statement the writer runs: the three above as one.
      expect(
        await seqScans(SEND_READ_SQL, [arr([a!.deviceId]), arr([uuidv7()]), arr([ab]), arr([a!.deviceId]), arr([ab])]),
        stats,
      ).toEqual([]);
      // EXPLAIN without ANALYZE: planned, not run.
      expect(await seqScans(MESSAGES_PROJECTION_SQL, ['{1,2,3}']), stats).toEqual([]);
    }
  });
});
