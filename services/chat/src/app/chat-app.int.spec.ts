// The chat service on real PostgreSQL and NATS, through its gRPC API: identity
// events feed its directory, every RPC maps to the right status and reason.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { randomUUID } from 'node:crypto';
import { credentials } from '@grpc/grpc-js';
import { createTestEnv, eventually, type TestEnv } from '@bil/testkit';
import type {
  AppError,
  DurableConsumer} from '@bil/runtime';
import {
  Database,
  EventStore,
  GrpcServer,
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
import { b64, envelope, epochRecord, publishIdentity, registerDevice, registerUser, revokeDevice, uuidv7, type TestDevice, type TestUser } from '../test-support.js';

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
  grpc = new GrpcServer({ logger, maxReceiveBytes: 16 * 1024 * 1024 });
  const proto = loadChatProto();
  grpc.add('bil.chat.v1.ChatService', proto.bil.chat.v1.ChatService.service, chatHandlers(app));
  const port = await grpc.listen('127.0.0.1', 0);
  client = new proto.bil.chat.v1.ChatService(`127.0.0.1:${port}`, credentials.createInsecure());
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

async function sendDirect(chatId: string, from: TestDevice, to: TestDevice[], messageId = uuidv7()) {
  return rpc<{ seq: string; duplicate: boolean }>('SendMessage', from, {
    chatId,
    messageId,
    envelope: envelope({ chatId, messageId, sender: from, scheme: 'direct', epoch: 0 }),
    wrappedKeys: wrapFor(to),
  });
}

async function sendGroup(chatId: string, from: TestDevice, epoch: number, messageId = uuidv7()) {
  return rpc<{ seq: string; duplicate: boolean }>('SendMessage', from, {
    chatId,
    messageId,
    envelope: envelope({ chatId, messageId, sender: from, scheme: 'group', epoch }),
  });
}

async function newGroup(owner: TestUser, others: TestUser[]) {
  const chatId = randomUUID();
  const e = epochRecord(chatId, 1, '', [{ user: owner, admin: true }, ...others.map((user) => ({ user, admin: false }))], owner.devices[0]!);
  await rpc('CreateGroup', owner.devices[0]!, {
    chatId,
    title: 'Five',
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
      expect(seen.get([...expected.keys()][1]!)!.title).toBe('Five');
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

  it('refuses sends after a removal until the next epoch, then refuses the old epoch', async () => {
    const admin = owner.devices[0]!;
    expect(await rpc('RemoveMember', admin, { chatId, userId: eve.userId })).toMatchObject({ epoch: '1', epochRotationRequired: true });
    expect(await refusal(sendGroup(chatId, members[0]!.devices[0]!, 1))).toMatchObject({ kind: 'failed_precondition', code: 'epoch_rotation_required' });
    const stale = epochRecord(chatId, 2, head, [{ user: owner, admin: true }, ...members.map((user) => ({ user, admin: false }))], admin);
    expect(await refusal(rpc('PublishEpoch', admin, { chatId, epochRecord: stale.record, epochKeys: stale.keys }))).toMatchObject({ code: 'epoch_members_mismatch' });
    const rest = members.slice(0, 3);
    const next = epochRecord(chatId, 2, head, [{ user: owner, admin: true }, ...rest.map((user) => ({ user, admin: false }))], admin);
    expect(await refusal(rpc('PublishEpoch', admin, { chatId, epochRecord: next.record, epochKeys: next.keys.slice(1) }))).toMatchObject({ code: 'epoch_keys_mismatch' });
    expect(await rpc('PublishEpoch', admin, { chatId, epochRecord: next.record, epochKeys: next.keys })).toEqual({ epoch: '2', recordHash: next.hash });
    head = next.hash;
    expect(await refusal(sendGroup(chatId, members[0]!.devices[0]!, 1))).toMatchObject({ code: 'stale_epoch', details: { current_epoch: 2 } });
    expect(await refusal(sendGroup(chatId, members[0]!.devices[0]!, 3))).toMatchObject({ code: 'unknown_epoch' });
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
    expect(await refusal(rpc('RemoveMember', owner.devices[0]!, { chatId, userId: owner.userId }))).toMatchObject({ code: 'owner_cannot_leave' });
    expect(await rpc('RemoveMember', m0.devices[0]!, { chatId, userId: m0.userId })).toMatchObject({ epochRotationRequired: true });
    expect(await refusal(rpc('GetChat', m0.devices[0]!, { chatId }))).toMatchObject({ code: 'chat_not_found' });
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
        ['SendMessage', { chatId, messageId: uuidv7(), envelope: envelope({ chatId, messageId: uuidv7(), sender: o, scheme: 'direct', epoch: 0 }) }],
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
    const good = JSON.parse(envelope({ chatId: personal, messageId, sender: a, scheme: 'direct', epoch: 0 })) as { header: Record<string, unknown>; ciphertext: string };
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
    expect(await refusal(rpc('CreateGroup', a, { chatId: randomUUID(), title: '', epochRecord: '{}' }))).toMatchObject({ code: 'invalid_title' });
    expect(await refusal(rpc('ChangeRole', a, { chatId: group, userId: bob.userId, role: 9 }))).toMatchObject({ code: 'invalid_role' });
    expect(await refusal(rpc('ListChats', a, { pageToken: 'garbage' }))).toMatchObject({ code: 'invalid_page_token' });
  });

  it('refuses a group epoch whose signature does not verify', async () => {
    const chatId = randomUUID();
    const e = epochRecord(chatId, 1, '', [{ user: alice, admin: true }], alice.devices[0]!);
    const doc = JSON.parse(e.record) as { payload: { created_at: number } };
    doc.payload.created_at += 1;
    expect(await refusal(rpc('CreateGroup', alice.devices[0]!, { chatId, title: 'x', epochRecord: JSON.stringify(doc), epochKeys: e.keys }))).toMatchObject({ code: 'invalid_epoch_signature' });
  });
});

describe('events and projections', () => {
  it('publishes chat.v1.* with the envelope on message.posted', async () => {
    await relay.drain();
    const stream = contextStream(nats.prefix, 'chat');
    const info = await nats.jsm.streams.info(stream, { subjects_filter: '>' } as never);
    const subjects = Object.keys((info.state as { subjects?: Record<string, number> }).subjects ?? {}).map((s) => s.slice(nats.prefix.length));
    expect(subjects).toEqual(expect.arrayContaining(['chat.v1.chat.created', 'chat.v1.message.posted', 'chat.v1.chat.epoch_published', 'chat.v1.chat.member_removed', 'chat.v1.message.read']));
    const msg = await nats.jsm.streams.getMessage(stream, { last_by_subj: `${nats.prefix}chat.v1.message.posted` });
    const payload = msg!.json<{ envelope: string; seq: string; chatType: string }>();
    expect(JSON.parse(payload.envelope).header.v).toBe(1);
    expect(payload.seq).toMatch(/^\d+$/);
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
    const tables = ['chats', 'chat_members', 'group_epochs', 'group_keys', 'messages', 'message_keys', 'message_reads'];
    const dump = async () =>
      Object.fromEntries(
        await Promise.all(
          tables.map(async (t) => [t, await db.query(`SELECT to_jsonb(x) AS row FROM chat.${t} x ORDER BY to_jsonb(x)::text`)] as const),
        ),
      );
    const live = await dump();
    expect((live.messages as unknown[]).length).toBeGreaterThan(20);
    await store.rebuildProjections(7);
    expect(await dump()).toEqual(live);
  });
});
