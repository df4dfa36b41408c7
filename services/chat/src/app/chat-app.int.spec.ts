// The chat service on real PostgreSQL and NATS, through its gRPC API: identity
// events feed its directory, every RPC maps to the right status and reason.
//
// Past 400 lines on purpose: its describes share one environment, and the
// last ones check what all the earlier ones wrote (every chat.v1 subject
// published; the read models rebuilt equal to the live ones over everything),
// so splitting it by use case would weaken those two checks.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomUUID, sign } from 'node:crypto';
import { credentials } from '@grpc/grpc-js';
import { createTestEnv, eventually, expectSnapshotsEqualReplay, type TestEnv } from '@bil/testkit';
import type {
  AppError,
  DurableConsumer} from '@bil/runtime';
import {
  Database,
  EventStore,
  GrpcServer,
  ServiceAuth,
  OutboxRelay,
  callUnary,
  connectNats,
  contextStream,
  createLogger,
  ensureStream,
  type Nats,
} from '@bil/runtime';
import { loadChatProto } from '@bil/proto';
import type { ChatServiceClient } from '@bil/proto/gen/bil/chat/v1/ChatService';
import { migrations } from '../infra/migrations/index.js';
import { chatReadModels } from './projections/read-models.js';
import { ChatApp } from './chat-app.js';
import { chatIntegrationEvent } from '../infra/integration-events.js';
import { identityDirectoryConsumer } from '../infra/identity-directory.js';
import { chatHandlers } from '../grpc/handlers.js';
import { chatDecider, chatStream, messageLogStream, type ChatEvent } from '../domain/chat/chat.js';
import { canonicalize, type CanonicalValue } from '@bil/crypto/protocol';
import { epochRecordHash, type Envelope } from '../domain/validation.js';
import { readsDecider } from '../domain/reads/reads.js';
import { b64, envelope, epochRecord, publishIdentity, registerDevice, registerUser, revokeDevice, signedLeave, uuidv7, type TestDevice, type TestUser } from '../test-support.js';

const logger = createLogger('chat-test', 'silent');
let env: TestEnv;
let db: Database;
let store: EventStore;
let nats: Nats;
let relay: OutboxRelay;
let consumer: DurableConsumer;
let grpc: GrpcServer;
let client: ChatServiceClient;

beforeAll(async () => {
  env = await createTestEnv('chat');
  db = await Database.connect({ url: env.databaseUrl, schema: 'chat', migrations, poolMax: 24 });
  await db.migrate();
  store = new EventStore(db, [chatReadModels]);
  nats = await connectNats(env.natsUrl, env.natsPrefix, 'chat-test');
  await ensureStream(nats, 'chat');
  await ensureStream(nats, 'identity');
  relay = new OutboxRelay({ db, nats, logger, toMessage: (e) => chatIntegrationEvent(nats.prefix, e), pollIntervalMs: 20 });
  relay.attach(store);
  relay.start();
  const app = new ChatApp(db, store, { maxGroupMembers: 64 }, logger);
  consumer = identityDirectoryConsumer({ nats, db, logger, app });
  await consumer.start();
  grpc = new GrpcServer({ logger, maxReceiveBytes: 16 * 1024 * 1024, auth: ServiceAuth.fromEnv('chat', env.serviceEnv) });
  const proto = loadChatProto();
  grpc.add('bil.chat.v1.ChatService', proto.bil.chat.v1.ChatService.service, chatHandlers(app));
  const port = await grpc.listen('127.0.0.1', 0);
  client = new proto.bil.chat.v1.ChatService(`127.0.0.1:${port}`, credentials.createInsecure(), ServiceAuth.fromEnv('gateway', env.serviceEnv).clientOptions('chat', {}));
});

afterAll(async () => {
  client?.close();
  await grpc?.shutdown(1000);
  await consumer?.stop();
  await relay?.stop();
  await nats?.nc.close();
  await db?.close();
  await env?.cleanup();
});

type Method = string;
/** Calls an RPC as `device`; resolves with the response, or rejects with the AppError chat sent. */
function rpc<T = Record<string, unknown>>(method: Method, device: TestDevice | null, req: Record<string, unknown> = {}): Promise<T> {
  const actor = device ? { userId: device.userId, deviceId: device.deviceId, sessionId: randomUUID() } : undefined;
  const c = client as unknown as Record<string, (...args: unknown[]) => unknown>;
  return callUnary(client, c[method] as never, { actor, ...req }, { timeoutMs: 15_000 }) as Promise<T>;
}

async function refusal(p: Promise<unknown>): Promise<{ kind: string; code: string; details: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    const e = err as AppError;
    return { kind: e.kind, code: e.code, details: e.details };
  }
  return { kind: 'none', code: 'none', details: {} };
}

/** Waits until chat's directory knows these users' current devices. */
async function known(...users: TestUser[]): Promise<void> {
  await eventually(async () => {
    for (const u of users) {
      const rows = await db.query<{ device_id: string }>(`SELECT device_id FROM chat.directory_devices WHERE user_id = ? AND status = 'active'`, [u.userId]);
      if (rows.length !== u.devices.length) return false;
    }
    return true;
  }, 10_000);
}

const wrapFor = (devices: TestDevice[]) => devices.map((d) => ({ deviceId: d.deviceId, wrappedKey: b64(384) }));

/** The other user of a personal chat, as a v2 header names it (read from the read model, as a client knows it). */
async function peerOf(chatId: string, userId: string): Promise<string> {
  const [row] = await db.query<{ pair_key: string | null }>(`SELECT pair_key FROM chat.chats WHERE chat_id = ?`, [chatId]);
  return row?.pair_key?.split(':').find((u) => u !== userId) ?? randomUUID();
}

/** The stored record hash of a group epoch, as a v2 header names it (random bytes for an epoch that doesn't exist). */
async function hashOf(chatId: string, epoch: number): Promise<string> {
  const [row] = await db.query<{ record_hash: string }>(`SELECT record_hash FROM chat.group_epochs WHERE chat_id = ? AND epoch = ?`, [chatId, epoch]);
  return row?.record_hash ?? b64(32);
}

async function sendDirect(chatId: string, from: TestDevice, to: TestDevice[], messageId = uuidv7()) {
  return rpc<{ seq: string; duplicate: boolean }>('SendMessage', from, {
    chatId,
    messageId,
    envelope: envelope({ chatId, messageId, sender: from, scheme: 'direct', epoch: 0, recipientUserId: await peerOf(chatId, from.userId) }),
    wrappedKeys: wrapFor(to),
  });
}

async function sendGroup(chatId: string, from: TestDevice, epoch: number, messageId = uuidv7(), epochHash?: string) {
  return rpc<{ seq: string; duplicate: boolean }>('SendMessage', from, {
    chatId,
    messageId,
    envelope: envelope({ chatId, messageId, sender: from, scheme: 'group', epoch, epochHash: epochHash ?? (await hashOf(chatId, epoch)) }),
  });
}

async function newGroup(owner: TestUser, others: TestUser[]) {
  const chatId = randomUUID();
  const e = epochRecord(chatId, 1, '', [{ user: owner, admin: true }, ...others.map((user) => ({ user, admin: false }))], owner.devices[0]!);
  await rpc('CreateGroup', owner.devices[0]!, {
    chatId,
    members: others.map((u) => ({ userId: u.userId, role: 'MEMBER_ROLE_MEMBER' })),
    epochRecord: e.record,
    epochKeys: e.keys,
  });
  return { chatId, head: e.hash };
}

describe('personal chats', () => {
  let alice: TestUser;
  let bob: TestUser;
  let chatId: string;

  beforeAll(async () => {
    alice = await registerUser(nats, 2);
    bob = await registerUser(nats, 2);
    await known(alice, bob);
  });

  it('creates one chat per pair, from either side', async () => {
    const first = await rpc<{ chat: { chatId: string; type: string; peerUserId: string }; created: boolean }>('CreatePersonalChat', alice.devices[0]!, { peerUserId: bob.userId });
    const again = await rpc<{ chat: { chatId: string }; created: boolean }>('CreatePersonalChat', bob.devices[1]!, { peerUserId: alice.userId });
    expect(first).toMatchObject({ created: true, chat: { type: 'CHAT_TYPE_PERSONAL', peerUserId: bob.userId } });
    expect(again).toMatchObject({ created: false, chat: { chatId: first.chat.chatId } });
    chatId = first.chat.chatId;
    expect(await refusal(rpc('CreatePersonalChat', alice.devices[0]!, { peerUserId: randomUUID() }))).toMatchObject({ code: 'user_not_found' });
  });

  it('stores a message wrapped for every device, the sending one included, and each device gets only its own key', async () => {
    const [a1, a2] = alice.devices as [TestDevice, TestDevice];
    const sent = await sendDirect(chatId, a1, [a1, a2, ...bob.devices]);
    expect(sent).toMatchObject({ seq: '1', duplicate: false });
    const keys = await db.query<{ device_id: string; wrapped_key: string }>(`SELECT device_id, wrapped_key FROM chat.message_keys WHERE chat_id = ? AND seq = 1`, [chatId]);
    expect(keys).toHaveLength(4);
    for (const d of [a1, a2, ...bob.devices]) {
      const page = await rpc<{ messages: Array<{ seq: string; wrappedKey: string; envelope: string }> }>('ListMessages', d, { chatId });
      expect(page.messages).toHaveLength(1);
      expect(page.messages[0]!.wrappedKey).toBe(keys.find((k) => k.device_id === d.deviceId)!.wrapped_key);
      expect(JSON.parse(page.messages[0]!.envelope).header.sender_device_id).toBe(a1.deviceId);
    }
  });

  it('answers a resend with the first result: same seq, no second message, no second event', async () => {
    const messageId = uuidv7();
    const to = [...alice.devices, ...bob.devices];
    const first = await sendDirect(chatId, alice.devices[1]!, to, messageId);
    const again = await sendDirect(chatId, alice.devices[1]!, to, messageId);
    expect(again).toEqual({ ...first, duplicate: true });
    const [{ n }] = (await db.query<{ n: string }>(`SELECT count(*) AS n FROM chat.events WHERE type = 'MessagePosted' AND data->>'messageId' = ?`, [messageId])) as [{ n: string }];
    expect(Number(n)).toBe(1);
  });

  it('refuses wrapped keys that miss or add devices, listing both', async () => {
    const r = await refusal(sendDirect(chatId, alice.devices[0]!, [alice.devices[0]!, bob.devices[0]!, { ...bob.devices[0]!, deviceId: randomUUID() }]));
    expect(r.kind).toBe('failed_precondition');
    expect(r.code).toBe('mismatched_devices');
    const missing = (r.details.missing_devices as Array<{ device_id: string }>).map((d) => d.device_id).sort();
    expect(missing).toEqual([alice.devices[1]!.deviceId, bob.devices[1]!.deviceId].sort());
    expect(r.details.extra_devices).toHaveLength(1);
  });

  it('refuses a send without a wrapped key for the sending device', async () => {
    const r = await refusal(sendDirect(chatId, alice.devices[0]!, [alice.devices[1]!, ...bob.devices]));
    expect(r).toMatchObject({ kind: 'failed_precondition', code: 'mismatched_devices', details: { missing_devices: [{ user_id: alice.userId, device_id: alice.devices[0]!.deviceId }], extra_devices: [] } });
  });

  it('follows new and revoked devices from identity events', async () => {
    const b3 = await registerDevice(nats, bob);
    await known(bob);
    expect((await refusal(sendDirect(chatId, alice.devices[0]!, [...alice.devices, ...bob.devices.slice(0, 2)]))).code).toBe('mismatched_devices');
    await sendDirect(chatId, alice.devices[0]!, [...alice.devices, ...bob.devices]);
    await revokeDevice(nats, bob, b3);
    await known(bob);
    expect(await refusal(rpc('ListMessages', b3, { chatId }))).toMatchObject({ kind: 'permission_denied', code: 'device_revoked' });
    await sendDirect(chatId, alice.devices[0]!, [...alice.devices, ...bob.devices]);
  });

  it('pages history forwards and backwards', async () => {
    for (let i = 0; i < 5; i++) await sendDirect(chatId, bob.devices[0]!, [...bob.devices, ...alice.devices]);
    const all = await rpc<{ lastSeq: string; messages: Array<{ seq: string }> }>('ListMessages', alice.devices[0]!, { chatId, limit: 200 });
    const last = Number(all.lastSeq);
    expect(all.messages.map((m) => Number(m.seq))).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    const back = await rpc<{ messages: Array<{ seq: string }>; hasMore: boolean }>('ListMessages', alice.devices[0]!, { chatId, beforeSeq: last, limit: 3 });
    expect(back.messages.map((m) => Number(m.seq))).toEqual([last - 3, last - 2, last - 1]);
    expect(back.hasMore).toBe(true);
    const fwd = await rpc<{ messages: Array<{ seq: string }>; hasMore: boolean }>('ListMessages', alice.devices[0]!, { chatId, afterSeq: last - 2, limit: 10 });
    expect(fwd.messages.map((m) => Number(m.seq))).toEqual([last - 1, last]);
    expect(fwd.hasMore).toBe(false);
    expect((await refusal(rpc('ListMessages', alice.devices[0]!, { chatId, limit: 201 }))).code).toBe('invalid_limit');
  });

  it('counts unread, marks read monotonically, and lists chats with unread', async () => {
    const chat = await rpc<{ chat: { lastSeq: string; unreadCount: string; lastReadSeq: string } }>('GetChat', alice.devices[0]!, { chatId });
    const last = Number(chat.chat.lastSeq);
    // Alice last posted at seq 4; bob's five messages followed.
    expect(chat.chat.unreadCount).toBe('5');
    const unread = await rpc<{ totalUnread: string; chats: Array<{ chatId: string; firstUnreadSeq: string }> }>('GetUnread', alice.devices[1]!, {});
    expect(unread).toMatchObject({ totalUnread: '5', chats: [{ chatId, firstUnreadSeq: String(last - 4) }] });
    expect(await rpc('MarkRead', alice.devices[0]!, { chatId, seq: last - 1 })).toEqual({ lastReadSeq: String(last - 1), unreadCount: '1' });
    expect(await rpc('MarkRead', alice.devices[0]!, { chatId, seq: 2 })).toEqual({ lastReadSeq: String(last - 1), unreadCount: '1' });
    expect(await rpc('MarkRead', alice.devices[0]!, { chatId, seq: 10_000 })).toEqual({ lastReadSeq: String(last), unreadCount: '0' });
    expect(await rpc('GetUnread', alice.devices[0]!, {})).toMatchObject({ totalUnread: '0', chats: [], nextPageToken: '' });
    const list = await rpc<{ chats: Array<{ chatId: string; unreadCount: string }> }>('ListChats', bob.devices[0]!, { type: 'CHAT_TYPE_PERSONAL' });
    expect(list.chats).toEqual([expect.objectContaining({ chatId, unreadCount: '0' })]);
    expect((await rpc<{ chats: unknown[] }>('ListChats', bob.devices[0]!, { type: 'CHAT_TYPE_GROUP' })).chats).toEqual([]);
  });
});

describe('unread on login', () => {
  interface UnreadMsg { seq: string; wrappedKey: string; envelope: string; senderDeviceId: string }
  interface UnreadChatMsg { chatId: string; title: string; unreadCount: string; firstUnreadSeq: string; lastSeq: string; newestUnread: UnreadMsg[] }
  interface UnreadRes { totalUnread: string; unreadChats: number; nextPageToken: string; chats: UnreadChatMsg[] }
  const CHATS = 300;
  let carol: TestUser;
  let dave: TestUser;
  let personal: string;
  const expected = new Map<string, number>();

  async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
    const queue = [...items];
    await Promise.all(Array.from({ length: n }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }));
  }

  beforeAll(async () => {
    carol = await registerUser(nats, 1);
    dave = await registerUser(nats, 2);
    await known(carol, dave);
    personal = (await rpc<{ chat: { chatId: string } }>('CreatePersonalChat', carol.devices[0]!, { peerUserId: dave.userId })).chat.chatId;
    for (let i = 0; i < 4; i++) await sendDirect(personal, carol.devices[0]!, [...carol.devices, ...dave.devices]);
    expected.set(personal, 4);
    await pool(Array.from({ length: CHATS }, (_, i) => i), 8, async (i) => {
      const { chatId } = await newGroup(carol, [dave]);
      const n = 1 + (i % 3);
      for (let k = 0; k < n; k++) await sendGroup(chatId, carol.devices[0]!, 1);
      expected.set(chatId, n);
    });
  }, 240_000);

  it('pages every chat with its count, first unread seq and newest envelopes, in a bounded number of queries', async () => {
    const spy = vi.spyOn(db, 'query');
    const mine = () => spy.mock.calls.filter(([, params]) => (params ?? []).some((p) => p === dave.userId || p === dave.devices[0]!.deviceId)).length;
    try {
      const seen = new Map<string, UnreadChatMsg>();
      let token = '';
      let pages = 0;
      let total = '';
      do {
        const before = mine();
        const page = await rpc<UnreadRes>('GetUnread', dave.devices[0]!, { limit: 100, maxEnvelopesPerChat: 3, pageToken: token });
        // The device check and the one set-based statement, whatever the number of chats.
        expect(mine() - before).toBeLessThanOrEqual(2);
        expect(page.unreadChats).toBe(CHATS + 1);
        total = page.totalUnread;
        for (const c of page.chats) seen.set(c.chatId, c);
        token = page.nextPageToken;
        pages++;
      } while (token && pages < 10);
      expect(pages).toBe(4);
      expect(seen.size).toBe(CHATS + 1);
      expect(Number(total)).toBe([...expected.values()].reduce((a, b) => a + b, 0));
      for (const [chatId, n] of expected) {
        const c = seen.get(chatId)!;
        expect(Number(c.unreadCount)).toBe(n);
        expect(Number(c.firstUnreadSeq)).toBe(Number(c.lastSeq) - n + 1);
        const want = Array.from({ length: Math.min(3, n) }, (_, k) => String(Number(c.lastSeq) - Math.min(3, n) + 1 + k));
        expect(c.newestUnread.map((m) => m.seq)).toEqual(want);
        for (const m of c.newestUnread) expect(JSON.parse(m.envelope)).toHaveProperty('header');
      }
      // Personal chats: each envelope comes with the calling device's own wrapped key.
      const p = seen.get(personal)!;
      expect(p.newestUnread).toHaveLength(3);
      for (const m of p.newestUnread) expect(m.wrappedKey).not.toBe('');
      // No plaintext titles for new groups: the unread view carries none.
      expect(seen.get([...expected.keys()][1]!)!.title).toBe('');
    } finally {
      spy.mockRestore();
    }
  }, 60_000);

  it('gives no envelopes by default, refuses more than 50, and follows reads from another device', async () => {
    const first = await rpc<UnreadRes>('GetUnread', dave.devices[1]!, { limit: 5 });
    expect(first.chats).toHaveLength(5);
    for (const c of first.chats) expect(c.newestUnread).toEqual([]);
    expect((await refusal(rpc('GetUnread', dave.devices[1]!, { maxEnvelopesPerChat: 51 }))).code).toBe('invalid_max_envelopes_per_chat');
    const top = first.chats[0]!;
    await rpc('MarkRead', dave.devices[0]!, { chatId: top.chatId, seq: Number(top.lastSeq) - 1 });
    const after = await rpc<UnreadRes>('GetUnread', dave.devices[1]!, { limit: 5, maxEnvelopesPerChat: 50 });
    expect(Number(after.totalUnread)).toBe(Number(first.totalUnread) - Number(top.unreadCount) + 1);
    const same = after.chats.find((c) => c.chatId === top.chatId)!;
    expect(same).toMatchObject({ unreadCount: '1', firstUnreadSeq: top.lastSeq });
    expect(same.newestUnread.map((m) => m.seq)).toEqual([top.lastSeq]);
    await rpc('MarkRead', dave.devices[1]!, { chatId: top.chatId, seq: Number(top.lastSeq) });
    const done = await rpc<UnreadRes>('GetUnread', dave.devices[0]!, { limit: 500 });
    expect(done.chats.find((c) => c.chatId === top.chatId)).toBeUndefined();
    expect(done.unreadChats).toBe(CHATS);
  });
});

describe('a group of five', () => {
  let owner: TestUser;
  let members: TestUser[];
  let eve: TestUser;
  let frank: TestUser;
  let chatId: string;
  let head: string;

  beforeAll(async () => {
    owner = await registerUser(nats, 1);
    members = [await registerUser(nats, 1), await registerUser(nats, 1), await registerUser(nats, 2), await registerUser(nats, 1)];
    eve = members[3]!;
    await known(owner, ...members);
    ({ chatId, head } = await newGroup(owner, members));
  });

  it('is created with its genesis epoch, and each device fetches its own epoch key', async () => {
    const chat = await rpc<{ chat: { memberCount: number; epoch: string; myRole: string; members: unknown[] } }>('GetChat', members[0]!.devices[0]!, { chatId });
    expect(chat.chat).toMatchObject({ memberCount: 5, epoch: '1', myRole: 'MEMBER_ROLE_MEMBER' });
    const epochs = await rpc<{ epochs: Array<{ epoch: string; recordHash: string; wrappedKey: string; record: string }>; currentEpoch: string }>('ListEpochs', members[2]!.devices[1]!, { chatId });
    expect(epochs.currentEpoch).toBe('1');
    expect(epochs.epochs[0]).toMatchObject({ epoch: '1', recordHash: head });
    const [{ wrapped_key }] = (await db.query<{ wrapped_key: string }>(`SELECT wrapped_key FROM chat.group_keys WHERE chat_id = ? AND device_id = ?`, [chatId, members[2]!.devices[1]!.deviceId])) as [{ wrapped_key: string }];
    expect(epochs.epochs[0]!.wrappedKey).toBe(wrapped_key);
  });

  it('takes 20 concurrent senders into a gap-free sequence, with concurrent resends answered once', async () => {
    const senders = [owner, ...members].flatMap((u) => u.devices);
    const ids = Array.from({ length: 20 }, () => uuidv7());
    const results = await Promise.all([
      ...ids.map((id, i) => sendGroup(chatId, senders[i % senders.length]!, 1, id)),
      ...ids.slice(0, 5).map((id, i) => sendGroup(chatId, senders[i % senders.length]!, 1, id)),
    ]);
    const seqs = results.slice(0, 20).map((r) => Number(r.seq));
    expect([...new Set(seqs)].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    results.slice(20).forEach((r, i) => expect(Number(r.seq)).toBe(seqs[i]));
    const rows = await db.query<{ seq: string }>(`SELECT seq FROM chat.messages WHERE chat_id = ? ORDER BY seq`, [chatId]);
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const [{ n }] = (await db.query<{ n: string }>(`SELECT count(*) AS n FROM chat.events WHERE stream_id = ?`, [`messages-${chatId}`])) as [{ n: string }];
    expect(Number(n)).toBe(20);
  });

  it('needs the next epoch to remove a member; a signed leave is recorded, pending, and refuses sends until the next epoch', async () => {
    const admin = owner.devices[0]!;
    expect(await refusal(rpc('RemoveMember', admin, { chatId, userId: eve.userId }))).toMatchObject({ kind: 'invalid_argument', code: 'epoch_required' });
    expect(await refusal(rpc('RemoveMember', eve.devices[0]!, { chatId, userId: eve.userId }))).toMatchObject({ kind: 'invalid_argument', code: 'leave_required' });
    const leave = signedLeave(chatId, eve.devices[0]!, 1, head);
    expect(await rpc('RemoveMember', eve.devices[0]!, { chatId, userId: eve.userId, leave })).toMatchObject({ epoch: '1', epochRotationRequired: true });
    const view = await rpc<{ chat: { pendingLeaves: string[]; epochRotationRequired: boolean } }>('GetChat', admin, { chatId });
    expect(view.chat.epochRotationRequired).toBe(true);
    expect(view.chat.pendingLeaves.map((l) => JSON.parse(l) as unknown)).toEqual([JSON.parse(leave)]);
    const [event] = await db.query<{ data: { reason: string; leave: unknown } }>(
      `SELECT data FROM chat.events WHERE stream_id = ? AND type = 'MemberRemoved' ORDER BY position DESC LIMIT 1`,
      [`chat-${chatId}`],
    );
    expect(event!.data).toMatchObject({ reason: 'left', leave: JSON.parse(leave) });
    expect(await refusal(sendGroup(chatId, members[0]!.devices[0]!, 1))).toMatchObject({ kind: 'failed_precondition', code: 'epoch_rotation_required' });
    const stale = epochRecord(chatId, 2, head, [{ user: owner, admin: true }, ...members.map((user) => ({ user, admin: false }))], admin);
    expect(await refusal(rpc('PublishEpoch', admin, { chatId, epochRecord: stale.record, epochKeys: stale.keys }))).toMatchObject({ code: 'epoch_members_mismatch' });
    const rest = members.slice(0, 3);
    const next = epochRecord(chatId, 2, head, [{ user: owner, admin: true }, ...rest.map((user) => ({ user, admin: false }))], admin);
    expect(await refusal(rpc('PublishEpoch', admin, { chatId, epochRecord: next.record, epochKeys: next.keys.slice(1) }))).toMatchObject({ code: 'epoch_keys_mismatch' });
    expect(await rpc('PublishEpoch', admin, { chatId, epochRecord: next.record, epochKeys: next.keys })).toEqual({ epoch: '2', recordHash: next.hash });
    expect((await rpc<{ chat: { pendingLeaves: string[] } }>('GetChat', admin, { chatId })).chat.pendingLeaves).toEqual([]);
    const old = head;
    head = next.hash;
    expect(await refusal(sendGroup(chatId, members[0]!.devices[0]!, 1))).toMatchObject({ code: 'stale_epoch', details: { current_epoch: 2 } });
    expect(await refusal(sendGroup(chatId, members[0]!.devices[0]!, 3))).toMatchObject({ code: 'unknown_epoch' });
    expect(await refusal(sendGroup(chatId, members[0]!.devices[0]!, 2, uuidv7(), old))).toMatchObject({
      kind: 'failed_precondition',
      code: 'envelope_epoch_hash_mismatch',
      details: { current_epoch: 2, epoch_hash: head },
    });
    expect(await sendGroup(chatId, members[0]!.devices[0]!, 2)).toMatchObject({ seq: '21' });
  });

  it('shows the removed member nothing any more', async () => {
    const eveDevice = eve.devices[0]!;
    expect(await refusal(rpc('ListMessages', eveDevice, { chatId }))).toMatchObject({ kind: 'not_found', code: 'chat_not_found' });
    expect(await refusal(rpc('ListEpochs', eveDevice, { chatId }))).toMatchObject({ code: 'chat_not_found' });
    expect(await refusal(sendGroup(chatId, eveDevice, 2))).toMatchObject({ code: 'chat_not_found' });
    expect((await rpc<{ chats: unknown[] }>('ListChats', eveDevice, {})).chats).toEqual([]);
    const [{ n }] = (await db.query<{ n: string }>(`SELECT count(*) AS n FROM chat.group_keys WHERE chat_id = ? AND epoch = 2 AND user_id = ?`, [chatId, eve.userId])) as [{ n: string }];
    expect(Number(n)).toBe(0);
  });

  it('adds a member with the next epoch; the newcomer sees only what follows', async () => {
    frank = await registerUser(nats, 1);
    await known(frank);
    const admin = owner.devices[0]!;
    const rest = members.slice(0, 3);
    const next = epochRecord(chatId, 3, head, [{ user: owner, admin: true }, ...[...rest, frank].map((user) => ({ user, admin: false }))], admin);
    const added = await rpc<{ chat: { memberCount: number } }>('AddMembers', admin, { chatId, members: [{ userId: frank.userId }], epochRecord: next.record, epochKeys: next.keys });
    expect(added.chat.memberCount).toBe(5);
    head = next.hash;
    await sendGroup(chatId, frank.devices[0]!, 3);
    const page = await rpc<{ messages: Array<{ seq: string }> }>('ListMessages', frank.devices[0]!, { chatId, limit: 200 });
    expect(page.messages.map((m) => m.seq)).toEqual(['22']);
    const byMember = epochRecord(chatId, 4, head, [{ user: owner, admin: true }, { user: members[0]!, admin: true }, ...[...members.slice(1, 3), frank, eve].map((user) => ({ user, admin: false }))], members[0]!.devices[0]!);
    expect(await refusal(rpc('AddMembers', members[0]!.devices[0]!, { chatId, members: [{ userId: eve.userId }], epochRecord: byMember.record, epochKeys: byMember.keys }))).toMatchObject({
      kind: 'permission_denied',
      code: 'not_an_admin',
    });
  });

  it('requires a rotation when a member revokes a listed device, and hands a new device the current key', async () => {
    const carol = members[2]!;
    const gone = carol.devices[1]!;
    await revokeDevice(nats, carol, gone);
    await eventually(async () => (await db.query<{ r: boolean }>(`SELECT epoch_rotation_required AS r FROM chat.chats WHERE chat_id = ?`, [chatId]))[0]?.r, 10_000);
    expect(await refusal(sendGroup(chatId, carol.devices[0]!, 3))).toMatchObject({ code: 'epoch_rotation_required' });
    const next = epochRecord(chatId, 4, head, [{ user: owner, admin: true }, ...[...members.slice(0, 3), frank].map((user) => ({ user, admin: false }))], owner.devices[0]!);
    await rpc('PublishEpoch', owner.devices[0]!, { chatId, epochRecord: next.record, epochKeys: next.keys });
    head = next.hash;
    await sendGroup(chatId, carol.devices[0]!, 4);

    const fresh = await registerDevice(nats, members[0]!);
    await known(members[0]!);
    expect(await rpc('AddEpochKeys', members[1]!.devices[0]!, { chatId, epoch: 4, epochKeys: wrapFor([fresh]) })).toEqual({ added: 1 });
    const epochs = await rpc<{ epochs: Array<{ epoch: string; wrappedKey: string }> }>('ListEpochs', fresh, { chatId });
    expect(epochs.epochs.filter((e) => e.wrappedKey !== '').map((e) => e.epoch)).toEqual(['4']);
    expect(await refusal(rpc('AddEpochKeys', members[1]!.devices[0]!, { chatId, epoch: 4, epochKeys: wrapFor([fresh]) }))).toMatchObject({ code: 'epoch_key_exists' });
    expect(await refusal(sendGroup(chatId, fresh, 4))).toMatchObject({ code: 'device_not_in_epoch' });
  });

  it('guards roles: only the owner promotes, the owner cannot leave, a member can', async () => {
    const [m0, m1] = members as [TestUser, TestUser];
    expect(await refusal(rpc('ChangeRole', m0.devices[0]!, { chatId, userId: m1.userId, role: 'MEMBER_ROLE_ADMIN' }))).toMatchObject({ code: 'owner_only' });
    expect(await rpc('ChangeRole', owner.devices[0]!, { chatId, userId: m1.userId, role: 'MEMBER_ROLE_ADMIN' })).toMatchObject({ member: { role: 'MEMBER_ROLE_ADMIN' } });
    expect(await refusal(rpc('RemoveMember', owner.devices[0]!, { chatId, userId: owner.userId, leave: signedLeave(chatId, owner.devices[0]!, 4, head) }))).toMatchObject({
      code: 'owner_cannot_leave',
    });
    expect(await rpc('RemoveMember', m0.devices[0]!, { chatId, userId: m0.userId, leave: signedLeave(chatId, m0.devices[0]!, 4, head) })).toMatchObject({
      epochRotationRequired: true,
    });
    expect(await refusal(rpc('GetChat', m0.devices[0]!, { chatId }))).toMatchObject({ code: 'chat_not_found' });
  });

  it('checks a signed leave: signed by the calling device, naming it, this chat and a stored epoch by its hash', async () => {
    const m2 = members[2]!;
    const d = m2.devices[0]!;
    const leave = (over: Record<string, unknown> = {}, epoch = 4, hash = head, by = d) => signedLeave(chatId, by, epoch, hash, over);
    const tries: Array<[string, Record<string, unknown>]> = [
      ['invalid_leave', { leave: '{"payload":{}}' }],
      ['invalid_leave_signature', { leave: JSON.stringify({ ...JSON.parse(leave()), signature: b64(64) }) }],
      ['leave_mismatch', { leave: leave({ device_id: m2.devices[1]?.deviceId ?? randomUUID() }) }],
      ['leave_mismatch', { leave: leave({ chat_id: randomUUID() }) }],
      ['leave_epoch_mismatch', { leave: leave({}, 9, b64(32)) }],
      ['leave_epoch_mismatch', { leave: leave({}, 4, b64(32)) }],
      ['leave_too_large', { leave: 'x'.repeat(4096) }],
    ];
    for (const [code, req] of tries) expect(await refusal(rpc('RemoveMember', d, { chatId, userId: m2.userId, ...req })), code).toMatchObject({ code });
    // Someone else's leave is no way to remove them.
    expect(await refusal(rpc('RemoveMember', owner.devices[0]!, { chatId, userId: m2.userId, leave: leave() }))).toMatchObject({ code: 'invalid_leave_signature' });
    // An earlier epoch named by its stored hash is fine: the leaver had not verified the newest record yet.
    const earlier = await hashOf(chatId, 2);
    expect(await rpc('RemoveMember', d, { chatId, userId: m2.userId, leave: leave({}, 2, earlier) })).toMatchObject({ epochRotationRequired: true });
    const pending = (await rpc<{ chat: { pendingLeaves: string[] } }>('GetChat', owner.devices[0]!, { chatId })).chat.pendingLeaves.map((l) => JSON.parse(l) as { payload: { user_id: string } });
    expect(pending.map((l) => l.payload.user_id)).toEqual([members[0]!.userId, m2.userId]);
  });

  it('removes another member with the next epoch in one step (no rotation pending)', async () => {
    const admin = owner.devices[0]!;
    // The two pending leavers are dropped too: the record lists exactly the members after the change.
    const withoutFrank = epochRecord(chatId, 5, head, [{ user: owner, admin: true }, { user: members[1]!, admin: true }], admin);
    expect(await rpc('RemoveMember', admin, { chatId, userId: frank.userId, epochRecord: withoutFrank.record, epochKeys: withoutFrank.keys })).toEqual({
      chatId,
      epoch: '5',
      epochRotationRequired: false,
    });
    head = withoutFrank.hash;
    expect((await rpc<{ chat: { pendingLeaves: string[] } }>('GetChat', admin, { chatId })).chat.pendingLeaves).toEqual([]);
    await sendGroup(chatId, members[1]!.devices[0]!, 5);
  });
});

describe('refusals', () => {
  let alice: TestUser;
  let bob: TestUser;
  let outsider: TestUser;
  let personal: string;
  let group: string;

  beforeAll(async () => {
    [alice, bob, outsider] = [await registerUser(nats, 1), await registerUser(nats, 1), await registerUser(nats, 1)];
    await known(alice, bob, outsider);
    personal = (await rpc<{ chat: { chatId: string } }>('CreatePersonalChat', alice.devices[0]!, { peerUserId: bob.userId })).chat.chatId;
    group = (await newGroup(alice, [bob])).chatId;
  });

  it('answers not_found on every RPC about a chat to a non-member', async () => {
    const o = outsider.devices[0]!;
    for (const chatId of [personal, group]) {
      const e = epochRecord(chatId, 2, b64(32), [{ user: outsider, admin: true }], o);
      const calls: Array<[string, Record<string, unknown>]> = [
        ['GetChat', { chatId }],
        ['AddMembers', { chatId, members: [{ userId: outsider.userId }], epochRecord: e.record, epochKeys: e.keys }],
        ['RemoveMember', { chatId, userId: bob.userId }],
        ['ChangeRole', { chatId, userId: bob.userId, role: 'MEMBER_ROLE_ADMIN' }],
        ['DeleteChat', { chatId }],
        ['PublishEpoch', { chatId, epochRecord: e.record, epochKeys: e.keys }],
        ['AddEpochKeys', { chatId, epoch: 1, epochKeys: wrapFor([o]) }],
        ['ListEpochs', { chatId }],
        ['SendMessage', { chatId, messageId: uuidv7(), envelope: envelope({ chatId, messageId: uuidv7(), sender: o, scheme: 'direct', epoch: 0, recipientUserId: bob.userId }) }],
        ['ListMessages', { chatId }],
        ['MarkRead', { chatId, seq: 1 }],
      ];
      for (const [method, req] of calls) {
        expect(await refusal(rpc(method, o, req)), `${method} on ${chatId}`).toMatchObject({ kind: 'not_found', code: 'chat_not_found' });
      }
    }
    expect((await rpc<{ chats: unknown[] }>('ListChats', o, {})).chats).toEqual([]);
    expect(await rpc('GetUnread', o, {})).toEqual({ totalUnread: '0', unreadChats: 0, chats: [], nextPageToken: '' });
  });

  it('answers bad input with invalid_argument or failed_precondition and a stable code', async () => {
    const a = alice.devices[0]!;
    const messageId = uuidv7();
    const good = JSON.parse(envelope({ chatId: personal, messageId, sender: a, scheme: 'direct', epoch: 0, recipientUserId: bob.userId })) as { header: Record<string, unknown>; ciphertext: string };
    const send = (env: unknown, extra: Record<string, unknown> = {}) =>
      refusal(rpc('SendMessage', a, { chatId: personal, messageId, envelope: typeof env === 'string' ? env : JSON.stringify(env), wrappedKeys: wrapFor(bob.devices), ...extra }));
    expect(await send({ ...good, header: { ...good.header, counter: '1' } })).toMatchObject({ kind: 'invalid_argument', code: 'invalid_envelope' });
    expect(await send('{"header":')).toMatchObject({ kind: 'invalid_argument', code: 'invalid_envelope' });
    expect(await send({ ...good, ciphertext: b64(256 * 1024) })).toMatchObject({ kind: 'invalid_argument', code: 'envelope_too_large' });
    expect(await send({ ...good, header: { ...good.header, chat_id: group } })).toMatchObject({ kind: 'invalid_argument', code: 'envelope_chat_mismatch' });
    expect(await send(good, { wrappedKeys: [] })).toMatchObject({ kind: 'failed_precondition', code: 'mismatched_devices' });
    expect(await send(good, { chatId: 'not-a-uuid' })).toMatchObject({ kind: 'invalid_argument', code: 'invalid_id' });
    expect(await send(good, { wrappedKeys: [{ deviceId: bob.devices[0]!.deviceId, wrappedKey: b64(100) }] })).toMatchObject({ code: 'invalid_length' });
    expect(await refusal(sendGroup(group, a, 7))).toMatchObject({ kind: 'failed_precondition', code: 'unknown_epoch' });
    expect(await refusal(rpc('SendMessage', null, { chatId: personal }))).toMatchObject({ kind: 'unauthenticated', code: 'missing_actor' });
    expect(await refusal(rpc('CreateGroup', a, { chatId: randomUUID(), title: 'Team', epochRecord: '{}' }))).toMatchObject({ kind: 'invalid_argument', code: 'plaintext_title_refused' });
    expect(await refusal(rpc('ChangeRole', a, { chatId: group, userId: bob.userId, role: 9 }))).toMatchObject({ code: 'invalid_role' });
    expect(await refusal(rpc('ListChats', a, { pageToken: 'garbage' }))).toMatchObject({ code: 'invalid_page_token' });
  });

  it('refuses a group epoch whose signature does not verify', async () => {
    const chatId = randomUUID();
    const e = epochRecord(chatId, 1, '', [{ user: alice, admin: true }], alice.devices[0]!);
    const doc = JSON.parse(e.record) as { payload: { created_at: number } };
    doc.payload.created_at += 1;
    expect(await refusal(rpc('CreateGroup', alice.devices[0]!, { chatId, epochRecord: JSON.stringify(doc), epochKeys: e.keys }))).toMatchObject({ code: 'invalid_epoch_signature' });
  });

  it('takes only envelope header v2 bound to the epoch hash or the recipient, and only v2 records', async () => {
    const a = alice.devices[0]!;
    const messageId = uuidv7();
    const direct = JSON.parse(envelope({ chatId: personal, messageId, sender: a, scheme: 'direct', epoch: 0, recipientUserId: bob.userId })) as {
      header: Record<string, unknown>;
    };
    const { epoch_hash: _h, recipient_user_id: _r, ...v1Header } = { ...direct.header, v: 1 } as Record<string, unknown>;
    const send = (env: unknown) => refusal(rpc('SendMessage', a, { chatId: personal, messageId, envelope: JSON.stringify(env), wrappedKeys: wrapFor([a, ...bob.devices]) }));
    const v1 = await send({ ...direct, header: v1Header });
    expect(v1).toMatchObject({ kind: 'invalid_argument', code: 'unsupported_envelope_version', details: { version: 1, supported: [2] } });
    expect(await send({ ...direct, header: { ...direct.header, recipient_user_id: outsider.userId } })).toMatchObject({ kind: 'invalid_argument', code: 'envelope_recipient_mismatch' });
    expect(await send({ ...direct, header: { ...direct.header, recipient_user_id: alice.userId } })).toMatchObject({ code: 'envelope_recipient_mismatch' });
    expect(await refusal(sendGroup(group, a, 1, uuidv7(), b64(32)))).toMatchObject({ kind: 'failed_precondition', code: 'envelope_epoch_hash_mismatch' });
    expect(await sendGroup(group, a, 1)).toMatchObject({ duplicate: false });

    const e = epochRecord(group, 2, await hashOf(group, 1), [{ user: alice, admin: true }, { user: bob, admin: false }], a);
    const doc = JSON.parse(e.record) as { payload: Record<string, unknown> };
    doc.payload.type = 'bil.group-epoch.v1';
    delete doc.payload.metadata;
    expect(await refusal(rpc('PublishEpoch', a, { chatId: group, epochRecord: JSON.stringify(doc), epochKeys: e.keys }))).toMatchObject({
      kind: 'invalid_argument',
      code: 'unsupported_record_version',
    });
  });
});

describe('data stored before step 8', () => {
  it('stays readable as stored (v1 record, v1 envelope); the legacy title shows until the first v2 record', async () => {
    const [a, b] = [await registerUser(nats, 1), await registerUser(nats, 1)];
    await known(a, b);
    const chatId = randomUUID();
    const [da, db1] = [a.devices[0]!, b.devices[0]!];
    // The genesis as a pre-step-8 client signed it: bil.group-epoch.v1, no metadata.
    const made = epochRecord(chatId, 1, '', [{ user: a, admin: true }, { user: b, admin: false }], da);
    const record = JSON.parse(made.record) as { payload: Record<string, unknown>; signature: string };
    record.payload.type = 'bil.group-epoch.v1';
    delete record.payload.metadata;
    record.signature = sign(null, Buffer.from(canonicalize(record.payload as CanonicalValue), 'utf8'), da.privateKey).toString('base64url');
    const v1Hash = epochRecordHash(record);
    const messageId = uuidv7();
    const v1Envelope = JSON.parse(envelope({ chatId, messageId, sender: da, scheme: 'group', epoch: 1 })) as { header: Record<string, unknown> };
    v1Envelope.header.v = 1;
    delete v1Envelope.header.epoch_hash;
    delete v1Envelope.header.recipient_user_id;
    const now = new Date().toISOString();
    const history: ChatEvent[] = [
      {
        type: 'ChatCreated',
        data: { chatId, chatType: 'group', title: 'Old title', createdBy: a.userId, members: [{ userId: a.userId, role: 'owner' }, { userId: b.userId, role: 'member' }], occurredAt: now },
      },
      {
        type: 'GroupEpochPublished',
        data: {
          chatId, epoch: 1, recordHash: v1Hash, record,
          keys: made.keys.map((k) => ({ ...k, userId: k.deviceId === da.deviceId ? a.userId : b.userId })),
          signerUserId: a.userId, signerDeviceId: da.deviceId, occurredAt: now,
        },
      },
    ];
    const posted: ChatEvent = {
      type: 'MessagePosted',
      data: { chatId, chatType: 'group', seq: 1, messageId, senderUserId: a.userId, senderDeviceId: da.deviceId, epoch: 1, envelope: v1Envelope as unknown as Envelope, wrappedKeys: [], occurredAt: now },
    };
    await db.tx(async (tx) => {
      const stream = await store.load(tx, chatDecider, chatStream(chatId));
      await store.append(tx, stream, history, history.reduce(chatDecider.evolve, stream.state));
      // The message log as Migration20261220000001 leaves it: the event at version = seq, no stream state row.
      await store.appendOwned(tx, [{ streamId: messageLogStream(chatId), streamVersion: 1, event: posted }]);
    });

    type View = { chat: { title: string; epoch: string } };
    type Unread = { chats: Array<{ chatId: string; title: string }> };
    expect((await rpc<View>('GetChat', db1, { chatId })).chat).toMatchObject({ title: 'Old title', epoch: '1' });
    expect((await rpc<Unread>('GetUnread', db1, {})).chats.find((c) => c.chatId === chatId)?.title).toBe('Old title');
    const page = await rpc<{ messages: Array<{ envelope: string }> }>('ListMessages', db1, { chatId });
    expect(page.messages.map((m) => JSON.parse(m.envelope) as unknown)).toEqual([v1Envelope]);
    const epochs = await rpc<{ epochs: Array<{ record: string; recordHash: string }> }>('ListEpochs', db1, { chatId });
    expect(epochs.epochs.map((e) => [JSON.parse(e.record) as unknown, e.recordHash])).toEqual([[record, v1Hash]]);

    // The chain goes on: v2 messages name the v1 record's hash; the next record is v2 and drops the plaintext title.
    expect(await sendGroup(chatId, db1, 1, uuidv7(), v1Hash)).toMatchObject({ seq: '2' });
    const next = epochRecord(chatId, 2, v1Hash, [{ user: a, admin: true }, { user: b, admin: false }], da);
    await rpc('PublishEpoch', da, { chatId, epochRecord: next.record, epochKeys: next.keys });
    expect((await rpc<View>('GetChat', db1, { chatId })).chat).toMatchObject({ title: '', epoch: '2' });
    expect((await rpc<Unread>('GetUnread', da, {})).chats.find((c) => c.chatId === chatId)?.title).toBe('');
    const cleared = await db.query<{ type: string }>(`SELECT type FROM chat.events WHERE stream_id = ? ORDER BY position`, [chatStream(chatId)]);
    expect(cleared.map((e) => e.type)).toEqual(['ChatCreated', 'GroupEpochPublished', 'GroupEpochPublished', 'LegacyTitleCleared']);
    expect((await rpc<{ messages: Array<{ envelope: string }> }>('ListMessages', db1, { chatId })).messages.map((m) => (JSON.parse(m.envelope) as Envelope).header.v)).toEqual([1, 2]);
  });
});

describe('events and projections', () => {
  it('publishes chat.v1.* with the envelope on message.posted', async () => {
    const [a, b] = [await registerUser(nats, 1), await registerUser(nats, 1)];
    await known(a, b);
    await newGroup(a, [b]);
    await relay.drain();
    const stream = contextStream(nats.prefix, 'chat');
    const info = await nats.jsm.streams.info(stream, { subjects_filter: '>' } as never);
    const subjects = Object.keys((info.state as { subjects?: Record<string, number> }).subjects ?? {}).map((s) => s.slice(nats.prefix.length));
    expect(subjects).toEqual(expect.arrayContaining(['chat.v1.chat.created', 'chat.v1.message.posted', 'chat.v1.chat.epoch_published', 'chat.v1.chat.member_removed', 'chat.v1.message.read']));
    const msg = await nats.jsm.streams.getMessage(stream, { last_by_subj: `${nats.prefix}chat.v1.message.posted` });
    const payload = msg!.json<{ envelope: string; seq: string; chatType: string }>();
    expect(JSON.parse(payload.envelope).header.v).toBe(2);
    expect(payload.seq).toMatch(/^\d+$/);
    // No plaintext group titles and no signed leaves on the bus.
    const created = await nats.jsm.streams.getMessage(stream, { last_by_subj: `${nats.prefix}chat.v1.chat.created` });
    expect(created!.json<{ title: string }>().title).toBe('');
    const removed = await nats.jsm.streams.getMessage(stream, { last_by_subj: `${nats.prefix}chat.v1.chat.member_removed` });
    expect(Object.keys(removed!.json<Record<string, unknown>>()).sort()).toEqual(['chatId', 'leftSeq', 'occurredAt', 'reason', 'removedBy', 'userId']);
  });

  it('removes a deleted account from its chats', async () => {
    const [a, b] = [await registerUser(nats, 1), await registerUser(nats, 1)];
    await known(a, b);
    const { chatId } = await newGroup(a, [b]);
    await publishIdentity(nats, 'UserDeleted', { userId: a.userId, occurredAt: new Date().toISOString() });
    await eventually(async () => {
      const r = await db.query<{ role: string }>(`SELECT role FROM chat.chat_members WHERE chat_id = ? AND left_seq IS NULL`, [chatId]);
      return r.length === 1 && r[0]!.role === 'owner';
    }, 10_000);
  });

  it('rebuilds the read models equal to the live ones', async () => {
    const tables = ['chats', 'chat_members', 'group_epochs', 'group_keys', 'group_leaves', 'messages', 'message_keys', 'message_reads'];
    const dump = async () =>
      Object.fromEntries(
        await Promise.all(
          tables.map(async (t) => [t, await db.query(`SELECT to_jsonb(x) AS row FROM chat.${t} x ORDER BY to_jsonb(x)::text`)] as const),
        ),
      );
    const live = await dump();
    expect((live.messages as unknown[]).length).toBeGreaterThan(20);
    expect((live.group_leaves as unknown[]).length).toBeGreaterThan(0);
    await store.rebuildProjections(7);
    expect(await dump()).toEqual(live);
  });

  it('keeps every stored chat and reads state equal to the replay of its events, under the deciders\' state version', async () => {
    const checked = await expectSnapshotsEqualReplay(db, 'chat', { [chatStream('')]: chatDecider, 'reads-': readsDecider });
    expect(checked).toBeGreaterThan(20);
  });
});
