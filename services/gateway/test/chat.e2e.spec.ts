// The chat routes through the public HTTP API with raw requests: the built
// identity and chat services run as child processes on their own database,
// Redis prefix and NATS prefix; the gateway runs in-process against them.
// Envelopes here are well-formed but not real ciphertext (the server never
// opens them; the SDK's chat.e2e.spec.ts covers real encryption), so these
// tests are about status codes, error codes and what reaches whom. They are
// written by hand in the step 8 wire formats (envelope header v2, epoch
// record v2, signed leave), not through @bil/crypto's client code; only the
// signed bytes come from its one definition (@bil/crypto/protocol).
// Size: past 400 lines because its describes share one pair of started
// services (seconds each to start); each describe is one route family.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes, randomUUID, sign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { canonicalize, type CanonicalValue } from '@bil/crypto/protocol';
import { ServiceAuth } from '@bil/runtime';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { createChatClient, type ChatApi } from '../src/chat-client.js';
import { createIdentityClient, type IdentityApi } from '../src/identity-client.js';
import {
  chatMain,
  deviceRegistration,
  ed25519,
  identityMain,
  randomUsername,
  startChat,
  startIdentity,
  type ChatProcess,
  type Ed25519Pair,
  type HttpResult,
  type IdentityProcess,
  RPC_DEADLINE_MS,
} from './fixtures.js';
import { startTestGateway, type TestGateway } from './gateway.js';

const PASSWORD = 'correct horse battery staple';
const MESSAGE_LIMIT = 512 * 1024;
const b64 = (n: number) => randomBytes(n).toString('base64url');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface DeviceInfo {
  deviceId: string;
  signing: Ed25519Pair;
  encryptionKey: string;
  certificate: string;
  issuedAt: number;
}

interface Person {
  userId: string;
  token: string;
  identity: Ed25519Pair;
  devices: DeviceInfo[];
}

describe.skipIf(!existsSync(identityMain) || !existsSync(chatMain))('chat through the gateway, raw HTTP (e2e)', () => {
  let env: TestEnv;
  let identity: IdentityProcess;
  let chatProc: ChatProcess;
  let idClient: IdentityApi;
  let chat: ChatApi;
  let gw: TestGateway;
  let http: TestGateway['http'];
  let alice: Person;
  let bob: Person;
  let mallory: Person;
  let personalId: string;
  let groupId: string;
  let groupHead: string;

  async function addDevice(p: Person, username: string, name: string): Promise<void> {
    const signing = ed25519();
    const body = deviceRegistration({ username, password: PASSWORD, userId: p.userId, identity: p.identity, deviceName: name, signing });
    const res = await http('POST', '/v1/auth/devices', { body });
    expect(res.status, res.text).toBe(201);
    p.token ||= res.body.tokens.access_token;
    p.devices.push({
      deviceId: res.body.device.device_id,
      signing,
      encryptionKey: body.encryption_key,
      certificate: body.certificate,
      issuedAt: body.certificate_issued_at,
    });
  }

  async function person(prefix: string, devices = 1): Promise<Person> {
    const username = randomUsername(prefix);
    const reg = await http('POST', '/v1/auth/register', { body: { username, password: PASSWORD } });
    expect(reg.status, reg.text).toBe(201);
    const p: Person = { userId: reg.body.user.user_id, token: '', identity: ed25519(), devices: [] };
    for (let i = 0; i < devices; i++) await addDevice(p, username, `device ${i}`);
    return p;
  }

  function envelope(p: Person, chatId: string, over: Record<string, unknown> = {}, messageId = randomUUID()) {
    return {
      message_id: messageId,
      envelope: {
        header: {
          v: 2,
          suite: 'aes-256-gcm',
          chat_id: chatId,
          message_id: messageId,
          sender_user_id: p.userId,
          sender_device_id: p.devices[0]!.deviceId,
          scheme: 'direct',
          epoch: 0,
          epoch_hash: '',
          recipient_user_id: p === alice ? bob.userId : alice.userId,
          counter: 1,
          timestamp: Date.now(),
          nonce: b64(12),
          commitment: b64(32),
          ...over,
        },
        ciphertext: b64(272),
        signature: b64(64),
      },
    };
  }

  /** Header members of a group message at `epoch` (v2: the record hash of that epoch, no recipient). */
  const inGroup = (epoch = 1, epochHash = groupHead) => ({ scheme: 'group', epoch, epoch_hash: epochHash, recipient_user_id: '' });

  const keysFor = (...devices: DeviceInfo[]) => devices.map((d) => ({ device_id: d.deviceId, wrapped_key: b64(384) }));

  const recordHash = (r: { payload: unknown; signature: string }) => createHash('sha256').update(canonicalize(r as CanonicalValue), 'utf8').digest('base64url');

  function genesis(chatId: string, owner: Person, members: Person[], epoch = 1, prevHash = '') {
    const all = [owner, ...members].sort((a, b) => (a.userId < b.userId ? -1 : 1));
    const payload = {
      type: 'bil.group-epoch.v2',
      chat_id: chatId,
      epoch,
      prev_hash: prevHash,
      members: all.map((p) => ({
        user_id: p.userId,
        role: p === owner ? 'admin' : 'member',
        identity_key: p.identity.publicKey,
        devices: [...p.devices]
          .sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1))
          .map((d) => ({ device_id: d.deviceId, encryption_key: d.encryptionKey, signing_key: d.signing.publicKey, issued_at: d.issuedAt, certificate: d.certificate })),
      })),
      key_commitment: b64(32),
      signer_user_id: owner.userId,
      signer_device_id: owner.devices[0]!.deviceId,
      created_at: Date.now(),
      metadata: b64(12 + 20 + 16), // the encrypted {"title": …}: random bytes of that size, the server never opens it
    };
    const signature = sign(null, Buffer.from(canonicalize(payload as CanonicalValue), 'utf8'), owner.devices[0]!.signing.privateKey).toString('base64url');
    const record = { payload, signature };
    return { record, hash: recordHash(record), keys: keysFor(...all.flatMap((p) => p.devices)) };
  }

  /** A signed leave (bil.group-leave.v1) by a person's first device. */
  function leaveOf(p: Person, chatId: string, epoch: number, epochHash: string) {
    const payload = { type: 'bil.group-leave.v1', chat_id: chatId, user_id: p.userId, device_id: p.devices[0]!.deviceId, epoch, epoch_hash: epochHash, created_at: Date.now() };
    return { payload, signature: sign(null, Buffer.from(canonicalize(payload as CanonicalValue), 'utf8'), p.devices[0]!.signing.privateKey).toString('base64url') };
  }

  /** Chat learns of devices from identity's events; retry while it hasn't yet. */
  async function untilDirectoryKnows(call: () => Promise<HttpResult>): Promise<HttpResult> {
    for (let i = 0; ; i++) {
      const res = await call();
      if (res.body?.error?.code !== 'mismatched_devices' || i >= 40) return res;
      await sleep(250);
    }
  }

  function expectError(res: HttpResult, status: number, code: string) {
    expect(res.status, res.text).toBe(status);
    expect(res.body.error.code, res.text).toBe(code);
  }

  beforeAll(async () => {
    env = await createTestEnv('gwchat');
    identity = await startIdentity({ ...env.serviceEnv, LOG_LEVEL: 'info', IDENTITY_SCRYPT_LOG2N: '14' });
    chatProc = await startChat(env.serviceEnv);
    const auth = ServiceAuth.fromEnv('gateway', env.serviceEnv);
    idClient = createIdentityClient(identity.grpcUrl, RPC_DEADLINE_MS, auth);
    chat = createChatClient(chatProc.grpcUrl, RPC_DEADLINE_MS, auth);
    gw = await startTestGateway(env, { name: 'gateway-chat-e2e', identity: idClient, chat: chat, overrides: { bodyLimits: { message: MESSAGE_LIMIT, epoch: 8 * 1024 * 1024 } } });
    http = gw.http;
    [alice, bob, mallory] = await Promise.all([person('alice'), person('bob', 2), person('mallory')]);

    const created = await http('POST', '/v1/chats', { token: alice.token, body: { type: 'personal', peer_user_id: bob.userId } });
    expect(created.status, created.text).toBe(201);
    personalId = created.body.chat.chat_id;
    groupId = randomUUID();
    const g = genesis(groupId, alice, [bob]);
    groupHead = g.hash;
    const group = await untilDirectoryKnows(() =>
      http('POST', '/v1/chats', {
        token: alice.token,
        body: { type: 'group', chat_id: groupId, members: [{ user_id: bob.userId }], epoch_record: g.record, epoch_keys: g.keys },
      }),
    );
    expect(group.status, group.text).toBe(201);
    expect(group.body.chat).toMatchObject({ title: '', pending_leaves: [] });
  }, 120_000);

  afterAll(async () => {
    await gw?.close();
    chat?.close();
    idClient?.close();
    await chatProc?.stop();
    await identity?.stop();
    await env?.cleanup();
  });

  it('reports chat in readiness; the personal chat is the same from both sides', async () => {
    const ready = await http('GET', '/readyz');
    expect(ready.status, ready.text).toBe(200);
    const again = await http('POST', '/v1/chats', { token: bob.token, body: { type: 'personal', peer_user_id: alice.userId } });
    expect(again.status, again.text).toBe(200);
    expect(again.body.chat).toMatchObject({ chat_id: personalId, type: 'personal', peer_user_id: alice.userId, my_role: 'member' });
  });

  it('stores a personal message wrapped to exactly the current devices; a resend is a duplicate', async () => {
    // Every current device of both users, the sending device included (protocol.md, direct chats).
    const body = { ...envelope(alice, personalId), wrapped_keys: keysFor(...alice.devices, ...bob.devices) };
    const sent = await untilDirectoryKnows(() => http('POST', `/v1/chats/${personalId}/messages`, { token: alice.token, body }));
    expect(sent.status, sent.text).toBe(201);
    expect(sent.body).toMatchObject({ seq: 1, duplicate: false });
    const again = await http('POST', `/v1/chats/${personalId}/messages`, { token: alice.token, body });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ seq: 1, duplicate: true });

    // Each of Bob's devices gets the envelope with its own wrapped key only.
    const page = await http('GET', `/v1/chats/${personalId}/messages?after=0&limit=10`, { token: bob.token });
    expect(page.status, page.text).toBe(200);
    expect(page.body.messages).toHaveLength(1);
    const bobKey = body.wrapped_keys.find((k) => k.device_id === bob.devices[0]!.deviceId)!.wrapped_key;
    expect(page.body.messages[0]).toMatchObject({ seq: 1, envelope: body.envelope, wrapped_key: bobKey, epoch: 0 });
  });

  it('missing or extra device keys: 409 mismatched_devices naming the devices', async () => {
    const missing = await http('POST', `/v1/chats/${personalId}/messages`, {
      token: alice.token,
      body: { ...envelope(alice, personalId), wrapped_keys: keysFor(...alice.devices, bob.devices[0]!) },
    });
    expectError(missing, 409, 'mismatched_devices');
    expect(missing.body.error.details).toEqual({
      missing_devices: [{ user_id: bob.userId, device_id: bob.devices[1]!.deviceId }],
      extra_devices: [],
    });
    const strange = randomUUID();
    const extra = await http('POST', `/v1/chats/${personalId}/messages`, {
      token: alice.token,
      body: { ...envelope(alice, personalId), wrapped_keys: [...keysFor(...alice.devices, ...bob.devices), { device_id: strange, wrapped_key: b64(384) }] },
    });
    expectError(extra, 409, 'mismatched_devices');
    expect(extra.body.error.details.missing_devices).toEqual([]);
    expect(extra.body.error.details.extra_devices).toEqual([expect.objectContaining({ device_id: strange })]);
  });

  it('wrong types and unknown fields: 400 invalid_request naming the field', async () => {
    const cases: [string, string, unknown, string][] = [
      ['POST', '/v1/chats', { type: 'personal', peer_user_id: 5 }, 'peer_user_id'],
      ['POST', '/v1/chats', { type: 'secret', peer_user_id: bob.userId }, 'type'],
      ['POST', `/v1/chats/${personalId}/read`, { seq: '1' }, 'seq'],
      ['POST', `/v1/chats/${personalId}/read`, { seq: -1 }, 'seq'],
      ['PATCH', `/v1/chats/${groupId}/members/${bob.userId}`, { role: 'king' }, 'role'],
      ['POST', `/v1/chats/${personalId}/messages`, { ...envelope(alice, personalId), extra: 1 }, 'extra'],
      ['POST', `/v1/chats/${personalId}/messages`, envelope(alice, personalId, { counter: '1' }), 'envelope.header.counter'],
      ['POST', `/v1/chats/${personalId}/messages`, { ...envelope(alice, personalId), wrapped_keys: {} }, 'wrapped_keys'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await http(method, path, { token: alice.token, body });
      expectError(res, 400, 'invalid_request');
      expect(res.body.error.details.field, `${method} ${path}`).toBe(field);
    }
    for (const q of ['limit=lots', 'after=1&before=5', 'limit=201', 'after=-3']) {
      expectError(await http('GET', `/v1/chats/${personalId}/messages?${q}`, { token: alice.token }), 400, 'invalid_request');
    }
    expectError(await http('GET', '/v1/chats/not-a-uuid', { token: alice.token }), 400, 'invalid_request');
    expectError(await http('POST', '/v1/chats', { token: alice.token, raw: '{"type":', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
  });

  it('oversized envelopes: 400 above the ciphertext limit, 413 above the body limit', async () => {
    const big = envelope(alice, personalId);
    big.envelope.ciphertext = 'A'.repeat(256 * 1024 + 4);
    const res = await http('POST', `/v1/chats/${personalId}/messages`, { token: alice.token, body: { ...big, wrapped_keys: keysFor(...alice.devices, ...bob.devices) } });
    expectError(res, 400, 'invalid_request');
    expect(res.body.error.details.field).toBe('envelope.ciphertext');
    const huge = envelope(alice, personalId);
    huge.envelope.ciphertext = 'A'.repeat(MESSAGE_LIMIT);
    expectError(await http('POST', `/v1/chats/${personalId}/messages`, { token: alice.token, body: huge }), 413, 'payload_too_large');
    // Other routes keep the default limit.
    expectError(await http('POST', `/v1/chats/${personalId}/read`, { token: alice.token, raw: JSON.stringify({ seq: 1, x: 'y'.repeat(70_000) }), headers: { 'content-type': 'application/json' } }), 413, 'payload_too_large');
  });

  it('group envelopes name the current epoch: unknown and stale epochs are refused', async () => {
    const unknown = await http('POST', `/v1/chats/${groupId}/messages`, {
      token: alice.token,
      body: envelope(alice, groupId, inGroup(7)),
    });
    expectError(unknown, 409, 'unknown_epoch');
    expect(unknown.body.error.details).toMatchObject({ current_epoch: 1 });
    const ok = await http('POST', `/v1/chats/${groupId}/messages`, { token: alice.token, body: envelope(alice, groupId, inGroup()) });
    expect(ok.status, ok.text).toBe(201);
    // A group message carries no wrapped keys; a personal one can't claim the group scheme.
    const keyed = await http('POST', `/v1/chats/${groupId}/messages`, {
      token: alice.token,
      body: { ...envelope(alice, groupId, inGroup()), wrapped_keys: keysFor(...bob.devices) },
    });
    expect(keyed.status, keyed.text).toBe(400);
    const scheme = await http('POST', `/v1/chats/${personalId}/messages`, {
      token: alice.token,
      body: { ...envelope(alice, personalId, inGroup()), wrapped_keys: keysFor(...bob.devices) },
    });
    expect(scheme.status, scheme.text).toBe(400);
    const keys = await http('GET', `/v1/chats/${groupId}/keys`, { token: bob.token });
    expect(keys.status, keys.text).toBe(200);
    expect(keys.body).toMatchObject({ current_epoch: 1, has_more: false });
    expect(keys.body.epochs[0].record.payload.chat_id).toBe(groupId);
    expect(keys.body.epochs[0].wrapped_key).toMatch(/^[A-Za-z0-9_-]{512}$/);
  });

  it('foreign chat ids: an envelope for another chat is refused; a chat you are not in is 404', async () => {
    // An envelope bound to the personal chat posted into the group (and the other way round).
    const crossed = await http('POST', `/v1/chats/${groupId}/messages`, {
      token: alice.token,
      body: envelope(alice, personalId, inGroup()),
    });
    expect(crossed.status, crossed.text).toBe(400);
    expect(crossed.body.error.code).toMatch(/chat/);
    // Sender ids that are not the caller's.
    const forged = await http('POST', `/v1/chats/${personalId}/messages`, {
      token: alice.token,
      body: { ...envelope(alice, personalId, { sender_user_id: bob.userId }), wrapped_keys: keysFor(...bob.devices) },
    });
    expect(forged.status, forged.text).toBe(400);
    expectError(await http('GET', `/v1/chats/${randomUUID()}`, { token: alice.token }), 404, 'chat_not_found');
  });

  it('a non-member gets 404 or 403 on every chat route', async () => {
    const g = genesis(groupId, mallory, []);
    const routes: [string, string, unknown?][] = [
      ['GET', `/v1/chats/${personalId}`],
      ['DELETE', `/v1/chats/${groupId}`],
      ['POST', `/v1/chats/${groupId}/members`, { members: [{ user_id: mallory.userId }], epoch_record: g.record, epoch_keys: g.keys }],
      ['DELETE', `/v1/chats/${groupId}/members/${bob.userId}`],
      ['PATCH', `/v1/chats/${groupId}/members/${bob.userId}`, { role: 'admin' }],
      ['GET', `/v1/chats/${groupId}/keys`],
      ['POST', `/v1/chats/${groupId}/keys`, { epoch_record: g.record, epoch_keys: g.keys }],
      ['POST', `/v1/chats/${groupId}/keys/1/devices`, { epoch_keys: keysFor(...mallory.devices) }],
      ['POST', `/v1/chats/${personalId}/messages`, { ...envelope(mallory, personalId), wrapped_keys: keysFor(...alice.devices, ...bob.devices) }],
      ['POST', `/v1/chats/${groupId}/messages`, envelope(mallory, groupId, inGroup())],
      ['GET', `/v1/chats/${personalId}/messages`],
      ['GET', `/v1/chats/${groupId}/messages?before=5`],
      ['POST', `/v1/chats/${personalId}/read`, { seq: 1 }],
    ];
    for (const [method, path, body] of routes) {
      const res = await http(method, path, { token: mallory.token, ...(body === undefined ? {} : { body }) });
      expect([403, 404], `${method} ${path}: ${res.text}`).toContain(res.status);
    }
    const listed = await http('GET', '/v1/chats', { token: mallory.token });
    expect(listed.body).toEqual({ chats: [], next_cursor: '' });
    const unread = await http('GET', '/v1/unread', { token: mallory.token });
    expect(unread.body).toEqual({ total_unread: 0, unread_chats: 0, next_page_token: '', chats: [] });
    // Without a token: 401 before anything else.
    expectError(await http('GET', `/v1/chats/${personalId}`), 401, 'missing_token');
  });

  it('lists chats newest activity first with unread counts, filtered by type', async () => {
    const all = await http('GET', '/v1/chats', { token: bob.token });
    expect(all.status, all.text).toBe(200);
    expect(all.body.chats.map((c: { chat_id: string }) => c.chat_id)).toEqual([groupId, personalId]);
    const groups = await http('GET', '/v1/chats?type=group&limit=1', { token: bob.token });
    expect(groups.body.chats).toEqual([expect.objectContaining({ chat_id: groupId, type: 'group', title: '', epoch: 1, members: [] })]);
    const one = await http('GET', `/v1/chats?limit=1`, { token: bob.token });
    expect(one.body.chats).toHaveLength(1);
    expect(one.body.next_cursor).not.toBe('');
    const next = await http('GET', `/v1/chats?limit=1&cursor=${encodeURIComponent(one.body.next_cursor)}`, { token: bob.token });
    expect(next.body.chats.map((c: { chat_id: string }) => c.chat_id)).toEqual([personalId]);
    const unread = await http('GET', '/v1/unread', { token: bob.token });
    expect(unread.body.total_unread).toBe(2);
    const doc = await http('GET', '/v1/openapi.json');
    expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/chats', '/v1/chats/{chat_id}/messages', '/v1/unread']));
  });

  it('step 8 wire formats: v2 only, bound to the epoch hash and the recipient; no plaintext titles', async () => {
    const { epoch_hash: _h, recipient_user_id: _r, ...v1 } = envelope(alice, personalId).envelope.header;
    const old = await http('POST', `/v1/chats/${personalId}/messages`, {
      token: alice.token,
      body: { ...envelope(alice, personalId), envelope: { ...envelope(alice, personalId).envelope, header: { ...v1, v: 1 } }, wrapped_keys: keysFor(...alice.devices, ...bob.devices) },
    });
    expectError(old, 400, 'unsupported_envelope_version');
    expect(old.body.error.message).toMatch(/update/);
    const wrongPeer = await http('POST', `/v1/chats/${personalId}/messages`, {
      token: alice.token,
      body: { ...envelope(alice, personalId, { recipient_user_id: mallory.userId }), wrapped_keys: keysFor(...alice.devices, ...bob.devices) },
    });
    expectError(wrongPeer, 400, 'envelope_recipient_mismatch');
    const fork = await http('POST', `/v1/chats/${groupId}/messages`, { token: alice.token, body: envelope(alice, groupId, inGroup(1, b64(32))) });
    expectError(fork, 409, 'envelope_epoch_hash_mismatch');
    expect(fork.body.error.details).toEqual({ current_epoch: 1, epoch_hash: groupHead });

    const titled = genesis(randomUUID(), alice, [bob]);
    const body = { type: 'group', chat_id: titled.record.payload.chat_id, title: 'Secret plans', members: [{ user_id: bob.userId }], epoch_record: titled.record, epoch_keys: titled.keys };
    expectError(await http('POST', '/v1/chats', { token: alice.token, body }), 400, 'plaintext_title_refused');
    const v1Record = { ...titled.record, payload: { ...titled.record.payload, type: 'bil.group-epoch.v1' } };
    expectError(await http('POST', '/v1/chats', { token: alice.token, body: { ...body, title: '', epoch_record: v1Record } }), 400, 'unsupported_record_version');
    expect((await http('POST', '/v1/chats', { token: alice.token, body: { ...body, title: '' } })).status).toBe(201);
  });

  it('removing a member needs the next epoch; leaving needs a signed leave, listed as pending until the next epoch', async () => {
    expectError(await http('DELETE', `/v1/chats/${groupId}/members/${bob.userId}`, { token: alice.token }), 400, 'epoch_required');
    expectError(await http('DELETE', `/v1/chats/${groupId}/members/${bob.userId}`, { token: bob.token }), 400, 'leave_required');
    expectError(
      await http('DELETE', `/v1/chats/${groupId}/members/${bob.userId}`, { token: bob.token, body: { leave: leaveOf(bob, groupId, 1, b64(32)) } }),
      409,
      'leave_epoch_mismatch',
    );
    const forged = { ...leaveOf(bob, groupId, 1, groupHead), signature: b64(64) };
    expectError(await http('DELETE', `/v1/chats/${groupId}/members/${bob.userId}`, { token: bob.token, body: { leave: forged } }), 400, 'invalid_leave_signature');
    const leave = leaveOf(bob, groupId, 1, groupHead);
    const left = await http('DELETE', `/v1/chats/${groupId}/members/${bob.userId}`, { token: bob.token, body: { leave } });
    expect(left.status, left.text).toBe(200);
    expect(left.body).toEqual({ chat_id: groupId, epoch: 1, epoch_rotation_required: true });
    const view = await http('GET', `/v1/chats/${groupId}`, { token: alice.token });
    expect(view.body.chat).toMatchObject({ epoch_rotation_required: true, pending_leaves: [leave] });
    expectError(await http('POST', `/v1/chats/${groupId}/messages`, { token: alice.token, body: envelope(alice, groupId, inGroup()) }), 409, 'epoch_rotation_required');
    const next = genesis(groupId, alice, [], 2, groupHead);
    const published = await http('POST', `/v1/chats/${groupId}/keys`, { token: alice.token, body: { epoch_record: next.record, epoch_keys: next.keys } });
    expect(published.status, published.text).toBe(201);
    groupHead = next.hash;
    expect((await http('GET', `/v1/chats/${groupId}`, { token: alice.token })).body.chat).toMatchObject({ epoch: 2, epoch_rotation_required: false, pending_leaves: [] });
    const keys = await http('GET', `/v1/chats/${groupId}/keys?after_epoch=1`, { token: alice.token });
    expect(keys.body.epochs[0].record).toEqual(next.record);
    expect((await http('POST', `/v1/chats/${groupId}/messages`, { token: alice.token, body: envelope(alice, groupId, inGroup(2)) })).status).toBe(201);
  });
});
