// Step 8 of the protocol: what binds a message to one verified history (the
// header's epoch hash, freshness after a rotation), encrypted group metadata,
// signed leaves, legacy (version 1) records and envelopes, and the personal
// chat id and recipient both users derive.
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { canonicalBytes } from './canonical-json.js';
import { decryptDirectMessage, encryptDirectMessage, personalChatId } from './direct.js';
import { fromBase64Url, toBase64Url, utf8 } from './encoding.js';
import { encryptWithKey, signEnvelope, type Envelope, type EnvelopeHeader, type LocalDevice } from './envelope.js';
import { CannotDecryptError, GroupHistoryError } from './errors.js';
import {
  createGroup,
  extendGroupChain,
  LEGACY_GROUP_EPOCH_TYPE,
  openGroupMetadata,
  rotateEpoch,
  unwrapEpochKey,
  verifyGroupChain,
  type EpochKey,
  type EpochUpdate,
  type GroupMemberInput,
  type SignedEpochRecord,
} from './group.js';
import { signGroupLeave, verifyGroupLeave } from './group-leave.js';
import { decryptGroupMessage, encryptGroupMessage, EPOCH_GRACE_MS } from './group-message.js';
import { systemEntropy } from './random.js';
import { ed25519Sign } from './signature.js';
import { flipBit, keyPool, makeUser, uuid, type TestUser } from './testing/fixtures.js';

let admin: TestUser;
let bob: TestUser;
let carol: TestUser;
const chatId = uuid(900);
const T0 = 1_764_100_000_000;
let n = 0;

beforeAll(async () => {
  const pool = await keyPool();
  admin = await makeUser(30, pool.slice(0, 1));
  bob = await makeUser(31, pool.slice(1, 2));
  carol = await makeUser(32, pool.slice(2, 3));
});

const member = (u: TestUser, role: 'admin' | 'member' = 'member'): GroupMemberInput => ({ role, devices: u.devices.map((d) => d.verified) });
const rejects = (p: Promise<unknown>) => expect(p).rejects.toThrow(CannotDecryptError);

async function keyOf(update: EpochUpdate, d: LocalDevice, chain = update.chain): Promise<EpochKey> {
  const row = update.wrappedKeys.find((w) => w.device_id === d.deviceId)!;
  return unwrapEpochKey({ chain, epoch: update.record.payload.epoch, wrappedKey: row, recipient: d });
}

function post(update: EpochUpdate, from: LocalDevice, timestamp: number): Promise<Envelope> {
  n++;
  return encryptGroupMessage({ sender: from, chain: update.chain, epochKey: update.epochKey, messageId: uuid(70000 + n), counter: n, timestamp, plaintext: utf8(`m${n}`) });
}

/** The same record as version 1 would have written it (no metadata), re-signed by its signer. */
function asLegacy(record: SignedEpochRecord, signer: LocalDevice): SignedEpochRecord {
  const { metadata: _dropped, ...rest } = record.payload;
  const payload = { ...rest, type: LEGACY_GROUP_EPOCH_TYPE };
  return { payload, signature: toBase64Url(ed25519Sign(signer.keys.signing.secretKey, canonicalBytes(payload as never))) };
}

describe('epoch records, version 2: metadata under the epoch key', () => {
  it('members read the title; the record carries only ciphertext; another epoch key does not open it', async () => {
    const g = await createGroup({ chatId, admin: admin.devices[0]!.local, createdAt: T0, members: [member(admin, 'admin'), member(bob)], metadata: { title: 'Weekend trip ⛺' } });
    expect(g.record.payload.type).toBe('bil.group-epoch.v2');
    expect(JSON.stringify(g.record)).not.toContain('Weekend');
    const bobKey = await keyOf(g, bob.devices[0]!.local);
    expect(await openGroupMetadata({ chain: g.chain, epochKey: bobKey })).toEqual({ title: 'Weekend trip ⛺' });
    const next = await rotateEpoch({ chain: g.chain, signer: admin.devices[0]!.local, createdAt: T0 + 1, members: [member(admin, 'admin'), member(bob)], metadata: { title: 'Renamed' } });
    expect(await openGroupMetadata({ chain: next.chain, epochKey: await keyOf(next, bob.devices[0]!.local) })).toEqual({ title: 'Renamed' });
    await rejects(openGroupMetadata({ chain: next.chain, epochKey: { ...bobKey, epoch: 2, recordHash: next.chain.head.hash } }));
  });

  it('altered metadata breaks the signature; an oversized title is refused when writing', async () => {
    const g = await createGroup({ chatId, admin: admin.devices[0]!.local, createdAt: T0, members: [member(admin, 'admin')], metadata: { title: 't' } });
    const bad = { ...g.record, payload: { ...g.record.payload, metadata: flipBit(g.record.payload.metadata!, 200) } };
    await rejects(verifyGroupChain([bad], { chatId }));
    await expect(createGroup({ chatId, admin: admin.devices[0]!.local, createdAt: T0, members: [member(admin, 'admin')], metadata: { title: 'x'.repeat(257) } })).rejects.toThrow(RangeError);
  });

  it('a chain may start with version 1 records, but a version 1 record after a version 2 one is a downgrade and refused', async () => {
    const g1 = await createGroup({ chatId, admin: admin.devices[0]!.local, createdAt: T0, members: [member(admin, 'admin'), member(bob)] });
    const legacy = asLegacy(g1.record, admin.devices[0]!.local);
    const chain1 = await verifyGroupChain([legacy], { chatId });
    expect(await openGroupMetadata({ chain: chain1, epochKey: { ...g1.epochKey, recordHash: chain1.head.hash } })).toBeNull();
    const g2 = await rotateEpoch({ chain: chain1, signer: admin.devices[0]!.local, createdAt: T0 + 1, members: [member(admin, 'admin'), member(bob)] });
    const chain2 = await verifyGroupChain([legacy, g2.record], { chatId });
    const g3 = await rotateEpoch({ chain: chain2, signer: admin.devices[0]!.local, createdAt: T0 + 2, members: [member(admin, 'admin'), member(bob)] });
    await rejects(extendGroupChain(chain2, [asLegacy(g3.record, admin.devices[0]!.local)]));
  });
});

describe('freshness and forks (the signed header binds the epoch record)', () => {
  let g1: EpochUpdate;
  let g2: EpochUpdate;

  beforeAll(async () => {
    g1 = await createGroup({ chatId, admin: admin.devices[0]!.local, createdAt: T0, members: [member(admin, 'admin'), member(bob), member(carol)] });
    // carol removed at T0 + 10 s
    g2 = await rotateEpoch({ chain: g1.chain, signer: admin.devices[0]!.local, createdAt: T0 + 10_000, members: [member(admin, 'admin'), member(bob)] });
  });

  it('a message in a replaced epoch is accepted within the grace and refused as out of date after it', async () => {
    const k1 = await keyOf(g1, admin.devices[0]!.local, g2.chain);
    const early = await post(g1, bob.devices[0]!.local, T0 + 5_000);
    const inGrace = await post(g1, bob.devices[0]!.local, T0 + 10_000 + EPOCH_GRACE_MS);
    const late = await post(g1, bob.devices[0]!.local, T0 + 10_000 + EPOCH_GRACE_MS + 1);
    await decryptGroupMessage({ envelope: early, chain: g2.chain, epochKeys: [k1] });
    await decryptGroupMessage({ envelope: inGrace, chain: g2.chain, epochKeys: [k1] });
    const err = await decryptGroupMessage({ envelope: late, chain: g2.chain, epochKeys: [k1] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GroupHistoryError);
    expect(err).toMatchObject({ code: 'out_of_date_epoch', epoch: 1, senderUserId: bob.userId });
    // a client that doesn't know epoch 2 yet still reads it (it can't tell)
    await decryptGroupMessage({ envelope: late, chain: g1.chain, epochKeys: [await keyOf(g1, admin.devices[0]!.local)] });
  });

  it('a message sent under another record for the same epoch is a fork, reported only when its signature verified', async () => {
    const other = await rotateEpoch({ chain: g1.chain, signer: admin.devices[0]!.local, createdAt: T0 + 10_001, members: [member(admin, 'admin'), member(bob), member(carol)] });
    const forked = await post(other, bob.devices[0]!.local, T0 + 20_000);
    const k2 = await keyOf(g2, admin.devices[0]!.local);
    const err = await decryptGroupMessage({ envelope: forked, chain: g2.chain, epochKeys: [k2] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'group_forked', epoch: 2, senderUserId: bob.userId });
    // a forged signature over the same header is the uniform error, not a fork report
    await rejects(decryptGroupMessage({ envelope: { ...forked, signature: flipBit(forked.signature, 3) }, chain: g2.chain, epochKeys: [k2] }));
    // the honest message of the same epoch opens
    const ok = await post(g2, bob.devices[0]!.local, T0 + 20_000);
    expect((await decryptGroupMessage({ envelope: ok, chain: g2.chain, epochKeys: [k2] })).header.epoch_hash).toBe(g2.chain.head.hash);
  });

  it('stored version 1 group envelopes still open (with the freshness rule)', async () => {
    const k1 = await keyOf(g1, bob.devices[0]!.local, g2.chain);
    const sender = admin.devices[0]!.local;
    const messageId = uuid(79999);
    const fields = { v: 1, suite: 'aes-256-gcm', chat_id: chatId, message_id: messageId, sender_user_id: sender.userId, sender_device_id: sender.deviceId, scheme: 'group', epoch: 1, counter: 999, timestamp: T0 + 1 } as const;
    const { hkdfSha256 } = await import('./kdf.js');
    const info = canonicalBytes({ purpose: 'bil.group-message-key.v1', chat_id: chatId, epoch: 1, message_id: messageId, sender_device_id: sender.deviceId });
    const key = await hkdfSha256(g1.epochKey.key, new Uint8Array(), info, 32);
    const { header, ciphertext } = await encryptWithKey('aes-256-gcm', key, messageId, fields, utf8('legacy'), systemEntropy);
    const env = await signEnvelope(sender, header as unknown as EnvelopeHeader, ciphertext);
    expect(new TextDecoder().decode((await decryptGroupMessage({ envelope: env, chain: g2.chain, epochKeys: [k1] })).plaintext)).toBe('legacy');
  });
});

describe('signed leave', () => {
  it('verifies under the chain; any change, another device or another chain is refused', async () => {
    const g = await createGroup({ chatId, admin: admin.devices[0]!.local, createdAt: T0, members: [member(admin, 'admin'), member(bob)] });
    const leave = signGroupLeave({ chain: g.chain, device: bob.devices[0]!.local, createdAt: T0 + 1 });
    expect(await verifyGroupLeave({ chain: g.chain, leave })).toEqual({ userId: bob.userId, deviceId: bob.devices[0]!.local.deviceId, epoch: 1 });
    await rejects(verifyGroupLeave({ chain: g.chain, leave: { ...leave, payload: { ...leave.payload, user_id: admin.userId } } }));
    await rejects(verifyGroupLeave({ chain: g.chain, leave: { ...leave, signature: flipBit(leave.signature, 9) } }));
    await rejects(verifyGroupLeave({ chain: g.chain, leave: { ...leave, payload: { ...leave.payload, epoch_hash: toBase64Url(new Uint8Array(32)) } } }));
    const elsewhere = await createGroup({ chatId: uuid(901), admin: admin.devices[0]!.local, createdAt: T0, members: [member(admin, 'admin'), member(bob)] });
    await rejects(verifyGroupLeave({ chain: elsewhere.chain, leave }));
    expect(() => signGroupLeave({ chain: g.chain, device: carol.devices[0]!.local, createdAt: T0 })).toThrow(TypeError);
  });
});

describe('personal chats: the id both users derive, the recipient in the signed header', () => {
  it('matches the chat service derivation, whichever order', async () => {
    const a = admin.userId;
    const b = bob.userId;
    const [x, y] = [a, b].sort();
    const h = createHash('sha256').update(`bil.personal-chat.v1:${x}:${y}`, 'utf8').digest();
    h[6] = (h[6]! & 0x0f) | 0x80;
    h[8] = (h[8]! & 0x3f) | 0x80;
    const hex = h.subarray(0, 16).toString('hex');
    const expected = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    expect(await personalChatId(a, b)).toBe(expected);
    expect(await personalChatId(b, a)).toBe(expected);
    await expect(personalChatId(a, a)).rejects.toThrow(TypeError);
  });

  it('a recipient checks the header names both users of the chat', async () => {
    const chat = await personalChatId(admin.userId, bob.userId);
    const msg = await encryptDirectMessage({
      sender: admin.devices[0]!.local, chatId: chat, messageId: uuid(80001), counter: 1, timestamp: T0, plaintext: utf8('hi'),
      recipients: [bob.devices[0]!.verified], recipientUserId: bob.userId,
    });
    expect(msg.envelope.header).toMatchObject({ v: 2, recipient_user_id: bob.userId, epoch_hash: '' });
    const open = (users: readonly [string, string]) =>
      decryptDirectMessage({ envelope: msg.envelope, wrappedKey: msg.wrapped_keys[0]!, recipient: bob.devices[0]!.local, chatId: chat, sender: admin.devices[0]!.verified, chatUsers: users });
    await open([admin.userId, bob.userId]);
    await rejects(open([admin.userId, carol.userId]));
    await expect(encryptDirectMessage({ sender: admin.devices[0]!.local, chatId: chat, messageId: uuid(80002), counter: 2, timestamp: T0, plaintext: utf8('x'), recipients: [bob.devices[0]!.verified], recipientUserId: admin.userId })).rejects.toThrow(TypeError);
    expect(fromBase64Url(msg.envelope.signature)).toHaveLength(64);
  });
});
