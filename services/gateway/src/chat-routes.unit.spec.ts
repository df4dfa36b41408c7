// The chat routes against a stubbed chat service: request mapping (actor,
// snake_case to camelCase, JSON objects to JSON text, enums, int64 strings),
// answers, validation before any RPC, per-route body limits and error pass-through.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { AppError, createLogger } from '@bil/runtime';
import { buildApp } from './app.js';
import type { Chat, ChatApi } from './chat-client.js';
import type { VerifiedActor } from './auth.js';
import { unavailableChat } from '../test/fixtures.js';
import type { IdentityApi } from './identity-client.js';

const ACTOR: VerifiedActor = {
  userId: '0193a0c4-1111-7000-8000-000000000001',
  deviceId: '0193a0c4-2222-7000-8000-000000000002',
  sessionId: 's1',
  expiresAt: Date.now() + 3_600_000,
};
/** The actor as the gateway passes it to the services (the token's expiry stays at the edge). */
const ACTOR_MSG = { userId: ACTOR.userId, deviceId: ACTOR.deviceId, sessionId: ACTOR.sessionId };
const CHAT_ID = '0193a0c4-3333-7000-8000-000000000003';
const PEER = '0193a0c4-4444-7000-8000-000000000004';
const MSG_ID = '0193a0c4-5555-7000-8000-000000000005';
const B64_43 = 'A'.repeat(43);
/** A message's retention fields when it is neither removed nor expiring. */
const LIVE = { removed: false, tombstone: '', expiresAt: '' };

const CHAT: Chat = {
  chatId: CHAT_ID,
  type: 'CHAT_TYPE_GROUP',
  title: 'Friends',
  createdBy: ACTOR.userId,
  createdAt: '2026-01-01T00:00:00.000Z',
  lastSeq: '7',
  lastActivityAt: '2026-01-01T00:01:00.000Z',
  epoch: '2',
  epochRotationRequired: false,
  myRole: 'MEMBER_ROLE_OWNER',
  memberCount: 2,
  lastReadSeq: '5',
  unreadCount: '2',
  peerUserId: '',
  members: [{ userId: ACTOR.userId, role: 'MEMBER_ROLE_OWNER', joinedAt: '2026-01-01T00:00:00.000Z', joinedSeq: '0' }],
  pendingLeaves: [],
  disappearingMs: '0',
  timerStatement: '',
};

// Envelope header v2 and epoch record v2 written by hand (step 8 wire formats), not through @bil/crypto.
const envelope = (over: Record<string, unknown> = {}) => ({
  header: {
    v: 2,
    suite: 'aes-256-gcm',
    chat_id: CHAT_ID,
    message_id: MSG_ID,
    sender_user_id: ACTOR.userId,
    sender_device_id: ACTOR.deviceId,
    scheme: 'group',
    epoch: 2,
    epoch_hash: B64_43,
    recipient_user_id: '',
    counter: 1,
    timestamp: 1764100000000,
    nonce: 'AAAAAAAAAAAAAAAA',
    commitment: B64_43,
    ...over,
  },
  ciphertext: 'A'.repeat(400),
  signature: 'A'.repeat(86),
});

/** A stored pre-step-8 envelope: header v1, twelve members. */
const legacyEnvelope = () => {
  const e = envelope({ v: 1 }) as { header: Record<string, unknown> };
  delete e.header.epoch_hash;
  delete e.header.recipient_user_id;
  return e;
};

const record = () => ({
  payload: {
    type: 'bil.group-epoch.v2',
    chat_id: CHAT_ID,
    epoch: 1,
    prev_hash: '',
    members: [
      {
        user_id: ACTOR.userId,
        role: 'admin',
        identity_key: B64_43,
        devices: [{ device_id: ACTOR.deviceId, encryption_key: 'MIIB', signing_key: B64_43, issued_at: 1, certificate: 'A'.repeat(86) }],
      },
    ],
    key_commitment: B64_43,
    signer_user_id: ACTOR.userId,
    signer_device_id: ACTOR.deviceId,
    created_at: 1764100000000,
    metadata: 'A'.repeat(64),
  },
  signature: 'A'.repeat(86),
});

const leave = () => ({
  payload: {
    type: 'bil.group-leave.v1',
    chat_id: CHAT_ID,
    user_id: ACTOR.userId,
    device_id: ACTOR.deviceId,
    epoch: 2,
    epoch_hash: B64_43,
    created_at: 1764100000000,
  },
  signature: 'A'.repeat(86),
});

function stubChat(): ChatApi {
  const base = unavailableChat();
  return {
    ...base,
    createPersonalChat: vi.fn(async () => ({ chat: { ...CHAT, type: 'CHAT_TYPE_PERSONAL' as const, peerUserId: PEER, title: '' }, created: true })),
    createGroup: vi.fn(async () => ({ chat: CHAT })),
    getChat: vi.fn(async () => ({ chat: CHAT })),
    listChats: vi.fn(async () => ({ chats: [{ ...CHAT, members: [] }], nextPageToken: 'next' })),
    sendMessage: vi.fn(async () => ({ seq: '8', createdAt: '2026-01-01T00:02:00.000Z', duplicate: false })),
    listMessages: vi.fn(async () => ({
      messages: [
        {
          chatId: CHAT_ID,
          seq: '8',
          messageId: MSG_ID,
          senderUserId: ACTOR.userId,
          senderDeviceId: ACTOR.deviceId,
          envelope: JSON.stringify(envelope()),
          wrappedKey: '',
          epoch: '2',
          createdAt: '2026-01-01T00:02:00.000Z',
          ...LIVE,
        },
      ],
      hasMore: false,
      lastSeq: '8',
    })),
    listEpochs: vi.fn(async () => ({
      epochs: [
        {
          epoch: '1',
          recordHash: B64_43,
          record: JSON.stringify(record()),
          wrappedKey: 'wk',
          signerUserId: ACTOR.userId,
          signerDeviceId: ACTOR.deviceId,
          createdAt: '2026-01-01T00:00:00.000Z',
        },
      ],
      currentEpoch: '1',
      hasMore: false,
    })),
    removeMember: vi.fn(async () => ({ chatId: CHAT_ID, epoch: '2', epochRotationRequired: true })),
    markRead: vi.fn(async () => ({ lastReadSeq: '8', unreadCount: '0' })),
    getUnread: vi.fn(async () => ({
      totalUnread: '3',
      unreadChats: 0,
      nextPageToken: '',
      chats: [{ chatId: CHAT_ID, type: 'CHAT_TYPE_GROUP' as const, title: '', unreadCount: '3', firstUnreadSeq: '6', lastSeq: '8', lastActivityAt: 'x', newestUnread: [] }],
    })),
    addEpochKeys: vi.fn(async () => ({ added: 1 })),
  };
}

describe('chat routes (stubbed chat service)', () => {
  let app: FastifyInstance;
  let chat: ChatApi;
  const headers = { authorization: 'Bearer good' };

  beforeAll(async () => {
    chat = stubChat();
    app = await buildApp({
      logger: createLogger('gateway-test', 'silent'),
      identity: {} as IdentityApi,
      chat,
      verifier: {
        verify: async (token) => {
          if (token === 'good') return ACTOR;
          throw new AppError('unauthenticated', 'invalid_token', 'the access token is invalid');
        },
      },
      limiter: { hit: async () => ({ allowed: true, retryAfterSeconds: 0 }) },
      limits: { perIp: 1, perUsername: 1 },
      ready: async () => ({ identity: 'ok', chat: 'ok', redis: 'ok' }),
      bodyLimitBytes: 4 * 1024,
      bodyLimits: { message: 64 * 1024, epoch: 32 * 1024 },
      trustProxyHops: 0,
    });
  });
  afterAll(() => app.close());
  beforeEach(() => vi.clearAllMocks());

  it('opens a personal chat with the verified actor: 201 when created, 200 when it existed', async () => {
    let res = await app.inject({ method: 'POST', url: '/v1/chats', headers, payload: { type: 'personal', peer_user_id: PEER } });
    expect(res.statusCode, res.body).toBe(201);
    expect(chat.createPersonalChat).toHaveBeenCalledWith({ actor: ACTOR_MSG, peerUserId: PEER });
    expect(res.json().chat).toMatchObject({ chat_id: CHAT_ID, type: 'personal', peer_user_id: PEER, last_seq: 7, unread_count: 2, my_role: 'owner' });
    vi.mocked(chat.createPersonalChat).mockResolvedValueOnce({ chat: CHAT, created: false });
    res = await app.inject({ method: 'POST', url: '/v1/chats', headers, payload: { type: 'personal', peer_user_id: PEER } });
    expect(res.statusCode).toBe(200);
  });

  it('creates a group without a title, passing the record as JSON text and roles as proto enums', async () => {
    const payload = {
      type: 'group',
      chat_id: CHAT_ID,
      members: [{ user_id: PEER, role: 'admin' }],
      epoch_record: record(),
      epoch_keys: [{ device_id: ACTOR.deviceId, wrapped_key: 'A'.repeat(512) }],
    };
    const res = await app.inject({ method: 'POST', url: '/v1/chats', headers, payload });
    expect(res.statusCode, res.body).toBe(201);
    const call = vi.mocked(chat.createGroup).mock.calls[0]![0];
    expect(call).toMatchObject({ actor: ACTOR_MSG, chatId: CHAT_ID, title: '', members: [{ userId: PEER, role: 'MEMBER_ROLE_ADMIN' }] });
    expect(JSON.parse(call.epochRecord!)).toEqual(record());
    expect(res.json().chat).toMatchObject({ title: 'Friends', pending_leaves: [] });
    expect(call.epochKeys).toEqual([{ deviceId: ACTOR.deviceId, wrappedKey: 'A'.repeat(512) }]);
    expect(res.json().chat.members).toEqual([{ user_id: ACTOR.userId, role: 'owner', joined_at: '2026-01-01T00:00:00.000Z', joined_seq: 0 }]);
  });

  it("passes a plaintext title to chat, which refuses it: 400 plaintext_title_refused", async () => {
    vi.mocked(chat.createGroup).mockRejectedValueOnce(
      new AppError('invalid_argument', 'plaintext_title_refused', 'the server stores no group titles', { field: 'title' }),
    );
    const payload = { type: 'group', chat_id: CHAT_ID, title: 'Friends', members: [], epoch_record: record(), epoch_keys: [] };
    const res = await app.inject({ method: 'POST', url: '/v1/chats', headers, payload });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'plaintext_title_refused', details: { field: 'title' } });
    expect(vi.mocked(chat.createGroup).mock.calls[0]![0].title).toBe('Friends');
  });

  it('shows pending signed leaves on the chat as objects', async () => {
    vi.mocked(chat.getChat).mockResolvedValueOnce({ chat: { ...CHAT, title: '', pendingLeaves: [JSON.stringify(leave())] } });
    const res = await app.inject({ method: 'GET', url: `/v1/chats/${CHAT_ID}`, headers });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().chat).toMatchObject({ title: '', pending_leaves: [leave()] });
  });

  it('validates the shape the `type` names, naming the field, before any RPC', async () => {
    const cases: [unknown, string][] = [
      [{ type: 'personal' }, 'peer_user_id'],
      [{ type: 'personal', peer_user_id: PEER, title: 'x' }, 'title'],
      [{ type: 'personal', peer_user_id: 'nope' }, 'peer_user_id'],
      [{ type: 'group', chat_id: CHAT_ID, title: 'x', members: [], epoch_record: record(), epoch_keys: 'x' }, 'epoch_keys'],
      [{ type: 'group', chat_id: CHAT_ID, title: 'x', members: [], epoch_record: { ...record(), extra: 1 }, epoch_keys: [] }, 'epoch_record.extra'],
      [{ type: 'channel' }, 'type'],
      [{}, 'type'],
    ];
    for (const [payload, field] of cases) {
      const res = await app.inject({ method: 'POST', url: '/v1/chats', headers, payload: payload as object });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error, JSON.stringify(payload)).toMatchObject({ code: 'invalid_request', details: { field } });
    }
    expect(chat.createPersonalChat).not.toHaveBeenCalled();
    expect(chat.createGroup).not.toHaveBeenCalled();
  });

  it('lists chats with filter, limit and cursor; integers in the query are checked as integers', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/chats?type=group&limit=10&cursor=abc', headers });
    expect(res.statusCode, res.body).toBe(200);
    expect(chat.listChats).toHaveBeenCalledWith({ actor: ACTOR_MSG, type: 'CHAT_TYPE_GROUP', limit: 10, pageToken: 'abc' });
    expect(res.json()).toMatchObject({ next_cursor: 'next', chats: [{ chat_id: CHAT_ID, type: 'group', members: [] }] });
    for (const q of ['limit=ten', 'limit=0', 'limit=101', 'limit=1.5', 'type=channel', 'page=2']) {
      const bad = await app.inject({ method: 'GET', url: `/v1/chats?${q}`, headers });
      expect(bad.statusCode, q).toBe(400);
      expect(bad.json().error.details.location, q).toBe('querystring');
    }
  });

  it('sends a message: envelope as JSON text, 201 new, 200 duplicate', async () => {
    const payload = { message_id: MSG_ID, envelope: envelope() };
    let res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/messages`, headers, payload });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toEqual({ seq: 8, created_at: '2026-01-01T00:02:00.000Z', duplicate: false });
    const call = vi.mocked(chat.sendMessage).mock.calls[0]![0];
    expect(call).toMatchObject({ actor: ACTOR_MSG, chatId: CHAT_ID, messageId: MSG_ID, wrappedKeys: [] });
    expect(JSON.parse(call.envelope!)).toEqual(envelope());
    vi.mocked(chat.sendMessage).mockResolvedValueOnce({ seq: '8', createdAt: 'x', duplicate: true });
    res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/messages`, headers, payload });
    expect(res.statusCode).toBe(200);
    expect(res.json().duplicate).toBe(true);
  });

  it('the send route alone takes bodies above the default limit', async () => {
    const big = { message_id: MSG_ID, envelope: { ...envelope(), ciphertext: 'A'.repeat(20_000) } };
    expect((await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/messages`, headers, payload: big })).statusCode).toBe(201);
    const tooBig = { message_id: MSG_ID, envelope: { ...envelope(), ciphertext: 'A'.repeat(70_000) } };
    const res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/messages`, headers, payload: tooBig });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('payload_too_large');
    const read = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/read`, headers, payload: { seq: 1, pad: 'x'.repeat(5000) } });
    expect(read.statusCode).toBe(413);
  });

  it('leaves the version to chat: a v1 header reaches it and its refusal comes back as 400 unsupported_envelope_version', async () => {
    vi.mocked(chat.sendMessage).mockRejectedValueOnce(
      new AppError('invalid_argument', 'unsupported_envelope_version', 'envelope version 1 is no longer accepted for new messages: this app is out of date, update it', {
        field: 'envelope.header.v',
        version: 1,
        supported: [2],
      }),
    );
    const res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/messages`, headers, payload: { message_id: MSG_ID, envelope: legacyEnvelope() } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'unsupported_envelope_version', details: { version: 1, supported: [2] } });
    expect(JSON.parse(vi.mocked(chat.sendMessage).mock.calls[0]![0].envelope!)).toEqual(legacyEnvelope());
    vi.mocked(chat.sendMessage).mockRejectedValueOnce(
      new AppError('failed_precondition', 'envelope_epoch_hash_mismatch', 'not the stored hash', { current_epoch: 2, epoch_hash: B64_43 }),
    );
    const fork = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/messages`, headers, payload: { message_id: MSG_ID, envelope: envelope() } });
    expect(fork.statusCode).toBe(409);
    expect(fork.json().error).toMatchObject({ code: 'envelope_epoch_hash_mismatch', details: { current_epoch: 2, epoch_hash: B64_43 } });
  });

  it('refuses a malformed envelope before any RPC', async () => {
    const cases: [unknown, string][] = [
      [{ message_id: MSG_ID, envelope: envelope({ epoch: '2' }) }, 'envelope.header.epoch'],
      [{ message_id: MSG_ID, envelope: envelope({ extra: true }) }, 'envelope.header.extra'],
      [{ message_id: MSG_ID, envelope: envelope({ counter: 0 }) }, 'envelope.header.counter'],
      [{ message_id: MSG_ID, envelope: envelope({ epoch_hash: 'A'.repeat(44) }) }, 'envelope.header.epoch_hash'],
      [{ message_id: MSG_ID, envelope: envelope({ recipient_user_id: 5 }) }, 'envelope.header.recipient_user_id'],
      [{ message_id: MSG_ID, envelope: { ...envelope(), signature: 5 } }, 'envelope.signature'],
      [{ message_id: MSG_ID }, 'envelope'],
      [{ message_id: MSG_ID, envelope: envelope(), wrapped_keys: [{ device_id: 'x', wrapped_key: 'y' }] }, 'wrapped_keys.0.device_id'],
    ];
    for (const [payload, field] of cases) {
      const res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/messages`, headers, payload: payload as object });
      expect(res.statusCode, field).toBe(400);
      expect(res.json().error.details.field, field).toBe(field);
    }
    expect(chat.sendMessage).not.toHaveBeenCalled();
  });

  it('passes mismatched_devices through as 409 with its details', async () => {
    const details = {
      missing_devices: [{ user_id: PEER, device_id: MSG_ID }],
      extra_devices: [],
    };
    vi.mocked(chat.sendMessage).mockRejectedValueOnce(
      new AppError('failed_precondition', 'mismatched_devices', 'the wrapped keys do not match the current devices', details),
    );
    const res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/messages`, headers, payload: { message_id: MSG_ID, envelope: envelope() } });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({ code: 'mismatched_devices', details });
  });

  it('pages history with after or before, returning envelopes as objects', async () => {
    vi.mocked(chat.listMessages).mockResolvedValueOnce({
      messages: [
        { chatId: CHAT_ID, seq: '7', messageId: MSG_ID, senderUserId: ACTOR.userId, senderDeviceId: ACTOR.deviceId, envelope: JSON.stringify(legacyEnvelope()), wrappedKey: '', epoch: '1', createdAt: 'x', ...LIVE },
        { chatId: CHAT_ID, seq: '8', messageId: MSG_ID, senderUserId: ACTOR.userId, senderDeviceId: ACTOR.deviceId, envelope: JSON.stringify(envelope()), wrappedKey: '', epoch: '2', createdAt: 'y', ...LIVE },
      ],
      hasMore: false,
      lastSeq: '8',
    });
    // Stored v1 headers come back unchanged, v2 headers with epoch_hash and recipient_user_id (nothing dropped by the response schema).
    const mixed = await app.inject({ method: 'GET', url: `/v1/chats/${CHAT_ID}/messages`, headers });
    expect(mixed.json().messages.map((m: { envelope: unknown }) => m.envelope)).toEqual([legacyEnvelope(), envelope()]);
    let res = await app.inject({ method: 'GET', url: `/v1/chats/${CHAT_ID}/messages?after=7&limit=20`, headers });
    expect(res.statusCode, res.body).toBe(200);
    expect(chat.listMessages).toHaveBeenCalledWith({ actor: ACTOR_MSG, chatId: CHAT_ID, limit: 20, afterSeq: 7 });
    expect(res.json()).toEqual({
      messages: [
        {
          chat_id: CHAT_ID,
          seq: 8,
          message_id: MSG_ID,
          sender_user_id: ACTOR.userId,
          sender_device_id: ACTOR.deviceId,
          envelope: envelope(),
          wrapped_key: '',
          epoch: 2,
          created_at: '2026-01-01T00:02:00.000Z',
          removed: false,
          expires_at: '',
        },
      ],
      has_more: false,
      last_seq: 8,
    });
    res = await app.inject({ method: 'GET', url: `/v1/chats/${CHAT_ID}/messages?before=8`, headers });
    expect(chat.listMessages).toHaveBeenLastCalledWith({ actor: ACTOR_MSG, chatId: CHAT_ID, limit: 0, beforeSeq: 8 });
    res = await app.inject({ method: 'GET', url: `/v1/chats/${CHAT_ID}/messages?after=1&before=5`, headers });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toMatchObject({ location: 'querystring', field: 'before' });
    res = await app.inject({ method: 'GET', url: `/v1/chats/${CHAT_ID}/messages?after=-1`, headers });
    expect(res.statusCode).toBe(400);
    res = await app.inject({ method: 'GET', url: `/v1/chats/not-a-uuid/messages`, headers });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toMatchObject({ location: 'params', field: 'chat_id' });
  });

  it('lists epochs with records as objects, v2 metadata included', async () => {
    const res = await app.inject({ method: 'GET', url: `/v1/chats/${CHAT_ID}/keys?after_epoch=0`, headers });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ current_epoch: 1, has_more: false, epochs: [{ epoch: 1, record: record(), wrapped_key: 'wk' }] });
    expect(res.json().epochs[0].record.payload.metadata).toBe(record().payload.metadata);
  });

  it('removes a member with the next epoch, or leaves with a signed leave passed as JSON text', async () => {
    let del = await app.inject({
      method: 'DELETE',
      url: `/v1/chats/${CHAT_ID}/members/${PEER}`,
      headers,
      payload: { epoch_record: record(), epoch_keys: [{ device_id: PEER, wrapped_key: 'A'.repeat(512) }] },
    });
    expect(del.statusCode, del.body).toBe(200);
    const removal = vi.mocked(chat.removeMember).mock.calls[0]![0];
    expect(removal).toMatchObject({ actor: ACTOR_MSG, chatId: CHAT_ID, userId: PEER, leave: '' });
    expect(JSON.parse(removal.epochRecord!)).toEqual(record());

    del = await app.inject({ method: 'DELETE', url: `/v1/chats/${CHAT_ID}/members/${ACTOR.userId}`, headers, payload: { leave: leave() } });
    expect(del.statusCode, del.body).toBe(200);
    expect(del.json()).toEqual({ chat_id: CHAT_ID, epoch: 2, epoch_rotation_required: true });
    const leaving = vi.mocked(chat.removeMember).mock.calls[1]![0];
    expect(leaving).toMatchObject({ userId: ACTOR.userId, epochRecord: '', epochKeys: [] });
    expect(JSON.parse(leaving.leave!)).toEqual(leave());

    // No body reaches chat, which says what it needs (epoch_required, leave_required).
    vi.mocked(chat.removeMember).mockRejectedValueOnce(new AppError('invalid_argument', 'epoch_required', 'removing a member needs the next epoch', { field: 'epoch_record' }));
    del = await app.inject({ method: 'DELETE', url: `/v1/chats/${CHAT_ID}/members/${PEER}`, headers });
    expect(del.statusCode).toBe(400);
    expect(del.json().error.code).toBe('epoch_required');
    expect(vi.mocked(chat.removeMember).mock.calls[2]![0]).toMatchObject({ epochRecord: '', leave: '' });
    vi.mocked(chat.removeMember).mockRejectedValueOnce(new AppError('failed_precondition', 'leave_epoch_mismatch', 'sign again', { current_epoch: 3 }));
    del = await app.inject({ method: 'DELETE', url: `/v1/chats/${CHAT_ID}/members/${ACTOR.userId}`, headers, payload: { leave: leave() } });
    expect(del.statusCode).toBe(409);
    expect(del.json().error).toMatchObject({ code: 'leave_epoch_mismatch', details: { current_epoch: 3 } });

    const before = vi.mocked(chat.removeMember).mock.calls.length;
    for (const [payload, field] of [
      [{ epoch_record: record() }, 'epoch_keys'],
      [{ leave: { ...leave(), extra: 1 } }, 'leave.extra'],
      [{ leave: { ...leave(), payload: { ...leave().payload, type: 'bil.group-leave.v9' } } }, 'leave.payload.type'],
      [{ leave: { ...leave(), signature: 'A'.repeat(87) } }, 'leave.signature'],
    ] as const) {
      const bad = await app.inject({ method: 'DELETE', url: `/v1/chats/${CHAT_ID}/members/${ACTOR.userId}`, headers, payload });
      expect(bad.statusCode, field).toBe(400);
      expect(bad.json().error.details.field, field).toBe(field);
    }
    expect(vi.mocked(chat.removeMember).mock.calls.length).toBe(before);
  });

  it('adds epoch keys for a device at a numbered epoch; read markers and unread counts', async () => {
    const keys = { epoch_keys: [{ device_id: PEER, wrapped_key: 'A'.repeat(512) }] };
    let res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/keys/2/devices`, headers, payload: keys });
    expect(res.statusCode, res.body).toBe(200);
    expect(chat.addEpochKeys).toHaveBeenCalledWith({ actor: ACTOR_MSG, chatId: CHAT_ID, epoch: 2, epochKeys: [{ deviceId: PEER, wrappedKey: 'A'.repeat(512) }] });
    res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/keys/two/devices`, headers, payload: keys });
    expect(res.statusCode).toBe(400);

    res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/read`, headers, payload: { seq: 8 } });
    expect(res.json()).toEqual({ last_read_seq: 8, unread_count: 0 });
    res = await app.inject({ method: 'POST', url: `/v1/chats/${CHAT_ID}/read`, headers, payload: { seq: '8' } });
    expect(res.statusCode).toBe(400);
    res = await app.inject({ method: 'GET', url: '/v1/unread', headers });
    expect(res.json()).toEqual({
      total_unread: 3,
      chats: [{ chat_id: CHAT_ID, type: 'group', title: '', unread_count: 3, first_unread_seq: 6, last_seq: 8, last_activity_at: 'x', newest_unread: [] }],
      unread_chats: 0,
      next_page_token: '',
    });
  });

  it('needs a token on every chat route', async () => {
    for (const [method, url] of [
      ['POST', '/v1/chats'],
      ['GET', '/v1/chats'],
      ['GET', `/v1/chats/${CHAT_ID}`],
      ['GET', `/v1/chats/${CHAT_ID}/messages`],
      ['GET', '/v1/unread'],
    ] as const) {
      const res = await app.inject({ method, url });
      expect(res.statusCode, url).toBe(401);
    }
  });

  it('deletes a message for everyone: the tombstone as JSON text; a removed message comes back without an envelope, with its tombstone', async () => {
    const tombstone = {
      payload: { type: 'bil.message-delete.v1', chat_id: CHAT_ID, message_id: MSG_ID, sender_user_id: ACTOR.userId, sender_device_id: ACTOR.deviceId, deleted_at: 1 },
      signature: 'A'.repeat(86),
    };
    chat.deleteMessage = vi.fn(async () => ({ seq: '8', deleted: true }));
    let res = await app.inject({ method: 'DELETE', url: `/v1/chats/${CHAT_ID}/messages/${MSG_ID}`, headers, payload: { tombstone } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({ seq: 8, deleted: true });
    expect(chat.deleteMessage).toHaveBeenCalledWith({ actor: ACTOR_MSG, chatId: CHAT_ID, messageId: MSG_ID, tombstone: JSON.stringify(tombstone) });
    // Malformed tombstones are refused before any RPC.
    res = await app.inject({ method: 'DELETE', url: `/v1/chats/${CHAT_ID}/messages/${MSG_ID}`, headers, payload: { tombstone: { payload: {}, signature: 'x' } } });
    expect(res.statusCode).toBe(400);
    res = await app.inject({ method: 'DELETE', url: `/v1/chats/${CHAT_ID}/messages/${MSG_ID}`, headers, payload: {} });
    expect(res.statusCode).toBe(400);
    expect(chat.deleteMessage).toHaveBeenCalledTimes(1);
    chat.deleteMessage = vi.fn(() => Promise.reject(new AppError('permission_denied', 'not_the_sender', 'only the sender may delete it')));
    res = await app.inject({ method: 'DELETE', url: `/v1/chats/${CHAT_ID}/messages/${MSG_ID}`, headers, payload: { tombstone } });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('not_the_sender');

    vi.mocked(chat.listMessages).mockResolvedValueOnce({
      messages: [
        { chatId: CHAT_ID, seq: '8', messageId: MSG_ID, senderUserId: ACTOR.userId, senderDeviceId: ACTOR.deviceId, envelope: '', wrappedKey: '', epoch: '2', createdAt: 'y', removed: true, tombstone: JSON.stringify(tombstone), expiresAt: '' },
      ],
      hasMore: false,
      lastSeq: '8',
    });
    res = await app.inject({ method: 'GET', url: `/v1/chats/${CHAT_ID}/messages`, headers });
    expect(res.statusCode, res.body).toBe(200);
    const [m] = res.json().messages;
    expect(m.envelope).toBeUndefined();
    expect(m).toMatchObject({ removed: true, tombstone, expires_at: '' });
  });

  it('sets the disappearing timer: 0 or within bounds, answered with the chat', async () => {
    chat.setDisappearingTimer = vi.fn(async () => ({ chat: { ...CHAT, disappearingMs: '60000' } }));
    let res = await app.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/timer`, headers, payload: { disappearing_ms: 60000 } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().chat.disappearing_ms).toBe(60000);
    expect(chat.setDisappearingTimer).toHaveBeenCalledWith({ actor: ACTOR_MSG, chatId: CHAT_ID, disappearingMs: 60000, timerStatement: '' });
    expect(res.json().chat.timer_statement).toBeUndefined();
    res = await app.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/timer`, headers, payload: { disappearing_ms: -1 } });
    expect(res.statusCode).toBe(400);
    res = await app.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/timer`, headers, payload: { disappearing_ms: 'soon' } });
    expect(res.statusCode).toBe(400);
    expect(chat.setDisappearingTimer).toHaveBeenCalledTimes(1);
  });

  it('passes a signed timer statement on as JSON text and returns the stored one parsed; refuses malformed ones at the edge', async () => {
    const statement = {
      payload: { type: 'bil.chat-timer.v1', chat_id: CHAT_ID, disappearing_ms: 60000, version: 3, set_by_user_id: ACTOR.userId, set_by_device_id: ACTOR.deviceId, created_at: 1 },
      signature: 'A'.repeat(86),
    };
    chat.setDisappearingTimer = vi.fn(async () => ({ chat: { ...CHAT, type: 'CHAT_TYPE_PERSONAL' as const, disappearingMs: '60000', timerStatement: JSON.stringify(statement) } }));
    let res = await app.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/timer`, headers, payload: { disappearing_ms: 60000, timer_statement: statement } });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().chat.timer_statement).toEqual(statement);
    expect(chat.setDisappearingTimer).toHaveBeenCalledWith({ actor: ACTOR_MSG, chatId: CHAT_ID, disappearingMs: 60000, timerStatement: JSON.stringify(statement) });
    for (const bad of [
      { ...statement, extra: 1 },
      { ...statement, payload: { ...statement.payload, type: 'bil.other.v1' } },
      { ...statement, payload: { ...statement.payload, version: 0 } },
      'text',
    ]) {
      res = await app.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/timer`, headers, payload: { disappearing_ms: 60000, timer_statement: bad } });
      expect(res.statusCode).toBe(400);
    }
    res = await app.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/timer`, headers, payload: { disappearing_ms: 60000, timer_statement: { ...statement, signature: 'A'.repeat(5000) } } });
    expect(res.statusCode).toBe(413);
    expect(chat.setDisappearingTimer).toHaveBeenCalledTimes(1);
  });

  it('documents every chat route in the OpenAPI document', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
    const ops = Object.entries(doc.paths as Record<string, object>)
      .filter(([p]) => p.startsWith('/v1/chats') || p === '/v1/unread')
      .flatMap(([p, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${p}`))
      .sort();
    expect(ops).toEqual(
      [
        'POST /v1/chats',
        'GET /v1/chats',
        'GET /v1/chats/{chat_id}',
        'DELETE /v1/chats/{chat_id}',
        'POST /v1/chats/{chat_id}/members',
        'DELETE /v1/chats/{chat_id}/members/{user_id}',
        'PATCH /v1/chats/{chat_id}/members/{user_id}',
        'GET /v1/chats/{chat_id}/keys',
        'POST /v1/chats/{chat_id}/keys',
        'POST /v1/chats/{chat_id}/keys/{epoch}/devices',
        'POST /v1/chats/{chat_id}/messages',
        'GET /v1/chats/{chat_id}/messages',
        'DELETE /v1/chats/{chat_id}/messages/{message_id}',
        'PUT /v1/chats/{chat_id}/timer',
        'POST /v1/chats/{chat_id}/read',
        'GET /v1/unread',
        'GET /v1/chats/{chat_id}/digest-policy',
        'PUT /v1/chats/{chat_id}/digest-policy',
        'PUT /v1/chats/{chat_id}/digest-consent',
      ].sort(),
    );
    expect(doc.components.schemas.Envelope).toBeDefined();
    expect(doc.components.schemas.EpochRecord).toBeDefined();
    expect(doc.components.schemas.SignedLeave).toBeDefined();
    expect(doc.components.schemas.Chat.required).toContain('pending_leaves');
    expect(doc.components.schemas.Envelope.properties.header.properties).toHaveProperty('epoch_hash');
    expect(doc.components.schemas.EpochRecord.properties.payload.properties).toHaveProperty('metadata');
    // The epochs page and the unread summary are shared schemas too (@bil/proto/rest-chat), which the answers name.
    expect(doc.components.schemas.EpochsPage.required).toEqual(['epochs', 'current_epoch', 'has_more']);
    expect(doc.components.schemas.Unread.required).toContain('next_page_token');
    expect(doc.components.schemas.UnreadChat.properties.newest_unread.items).toEqual({ $ref: '#/components/schemas/Message' });
    expect(doc.paths['/v1/chats/{chat_id}/keys'].get.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/EpochsPage' });
    expect(doc.paths['/v1/unread'].get.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Unread' });
    expect(doc.paths['/v1/chats/{chat_id}/members/{user_id}'].delete.requestBody.content['application/json'].schema.properties).toHaveProperty('leave');
    expect(doc.paths['/v1/chats/{chat_id}/messages'].post.security).toEqual([{ bearerAuth: [] }]);
  });
});
