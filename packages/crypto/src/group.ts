// Group epochs (docs/protocol.md "Group chats: epochs"): the signed records,
// verifying a chain of them, issuing the next one, and handing out epoch keys.
// Longer than most modules because these rules are one unit: the checks a
// member runs on a record (verifyRecord, authorised) are the same code that
// the signer runs on the record it just made (issueEpoch), so the two can't
// drift apart. Messages are in group-message.ts, metadata in group-metadata.ts,
// leaves in group-leave.ts.
import { canonicalBytes, canonicalize } from './canonical-json.js';
import { deviceMaterial, verifyDevice, type DeviceRecord, type VerifiedDevice } from './certificate.js';
import { assertUint, assertUuid, equalBytes, equalStrings, fromBase64Url, isUuid, toBase64Url, wipe, type Bytes } from './encoding.js';
import type { LocalDevice, WrappedKey } from './envelope.js';
import { fail, failClosed } from './errors.js';
import { checkMetadataShape, openSealedMetadata, sealGroupMetadata, type GroupMetadata } from './group-metadata.js';
import { HASH_LENGTH, hmacSha256, sha256 } from './kdf.js';
import { systemEntropy, type EntropySource } from './random.js';
import { ED25519_SIGNATURE_LENGTH, ed25519Sign, ed25519Verify } from './signature.js';
import {
  EPOCH_DEVICE_FIELDS,
  EPOCH_MEMBER_FIELDS,
  GROUP_EPOCH_FIELDS,
  GROUP_EPOCH_TYPE,
  GROUP_EPOCH_V1_FIELDS,
  LEGACY_GROUP_EPOCH_TYPE,
  SIGNED_STATEMENT_FIELDS,
  hasExactFields,
  type FieldSet,
} from './signed-fields.js';
import { oaepLabel, unwrapSecret, wrapSecret } from './wrap.js';

// The record types (v2 written, v1 still verified in stored chains) and every
// record member list are defined once, in signed-fields.ts.
export { GROUP_EPOCH_TYPE, LEGACY_GROUP_EPOCH_TYPE };

export const GROUP_PURPOSE = {
  epochKey: 'bil.epoch-key.v1',
  epochKeyCommitment: 'bil.epoch-key-commitment.v1',
  groupMessageKey: 'bil.group-message-key.v1',
  metadataKey: 'bil.group-metadata-key.v1',
  metadata: 'bil.group-metadata.v1',
} as const;

export type GroupRole = 'admin' | 'member';

/** A member device as listed in an epoch record: its certificate fields and id. */
export interface EpochDevice {
  readonly device_id: string;
  readonly encryption_key: string;
  readonly signing_key: string;
  readonly issued_at: number;
  readonly certificate: string;
}

/** A member as listed in an epoch record. */
export interface EpochMember {
  readonly user_id: string;
  readonly role: GroupRole;
  readonly identity_key: string;
  /** Sorted by device_id. */
  readonly devices: readonly EpochDevice[];
}

/** The signed part of an epoch record (docs/protocol.md, "Group epochs"). */
export interface EpochRecordPayload {
  readonly type: typeof GROUP_EPOCH_TYPE | typeof LEGACY_GROUP_EPOCH_TYPE;
  readonly chat_id: string;
  /** 1 for the genesis record, then +1 per record. */
  readonly epoch: number;
  /** base64url SHA-256 of the previous signed record; "" for genesis. */
  readonly prev_hash: string;
  /** Sorted by user_id. */
  readonly members: readonly EpochMember[];
  /** HMAC-SHA256 commitment to the epoch key, base64url. */
  readonly key_commitment: string;
  readonly signer_user_id: string;
  readonly signer_device_id: string;
  readonly created_at: number;
  /** Version 2: the group's metadata (title, ...) encrypted under the epoch key (group-metadata.ts), base64url. */
  readonly metadata?: string;
}

/** An epoch record as stored by the chat service (`group_keys` epochs). */
export interface SignedEpochRecord {
  readonly payload: EpochRecordPayload;
  /** Ed25519 signature of the signer device over canonical JSON of `payload`, base64url. */
  readonly signature: string;
}

/** A member and their devices, for creating or rotating an epoch. */
export interface GroupMemberInput {
  readonly role: GroupRole;
  /** The member's devices, each verified under the identity key pinned for them. */
  readonly devices: readonly VerifiedDevice[];
}

/** A verified member of one epoch. */
export interface GroupMember {
  readonly userId: string;
  readonly role: GroupRole;
  readonly identityKey: string;
  readonly devices: ReadonlyMap<string, VerifiedDevice>;
}

/** One verified epoch of a chain. */
export interface GroupEpoch {
  readonly epoch: number;
  /** base64url SHA-256 of the canonical signed record. */
  readonly hash: string;
  readonly record: SignedEpochRecord;
  readonly members: ReadonlyMap<string, GroupMember>;
}

/** A chain of epoch records that verified from genesis (or from a trusted head). */
export interface GroupChain {
  readonly chatId: string;
  readonly epochs: readonly GroupEpoch[];
  readonly head: GroupEpoch;
}

/** An epoch key this device holds. Secret: store it like a private key. */
export interface EpochKey {
  readonly chatId: string;
  readonly epoch: number;
  readonly recordHash: string;
  readonly key: Uint8Array;
}

/** The output of creating or rotating an epoch: publish `record` and `wrappedKeys`. */
export interface EpochUpdate {
  readonly record: SignedEpochRecord;
  /** One per device listed in the record (`group_keys` rows). */
  readonly wrappedKeys: readonly WrappedKey[];
  readonly epochKey: EpochKey;
  /** The caller's chain extended by the new record. */
  readonly chain: GroupChain;
}

const chains = new WeakSet<GroupChain>();

/** @internal */
export function assertChain(chain: GroupChain): void {
  if (typeof chain !== 'object' || chain === null || !chains.has(chain)) throw new TypeError('chain: not a verified GroupChain');
}

function exactKeys(value: unknown, set: FieldSet): Record<string, unknown> {
  if (!hasExactFields(value, set)) fail();
  return value;
}

/**
 * base64url SHA-256 of the canonical signed record: what `prev_hash` names.
 * @example
 * const head = { epoch: record.payload.epoch, hash: await epochRecordHash(record) };
 */
export async function epochRecordHash(record: SignedEpochRecord): Promise<string> {
  return toBase64Url(await sha256(canonicalBytes({ payload: record.payload as never, signature: record.signature })));
}

async function epochKeyCommitment(key: Uint8Array, chatId: string, epoch: number): Promise<Bytes> {
  return hmacSha256(key, canonicalBytes({ purpose: GROUP_PURPOSE.epochKeyCommitment, chat_id: chatId, epoch }));
}

function epochKeyLabel(chatId: string, epoch: number, recordHash: string, deviceId: string): Bytes {
  return oaepLabel({ purpose: GROUP_PURPOSE.epochKey, chat_id: chatId, epoch, record_hash: recordHash, device_id: deviceId });
}

function sortedStrictly(ids: string[]): boolean {
  for (let i = 1; i < ids.length; i++) if (!(ids[i - 1]! < ids[i]!)) return false;
  return true;
}

/** Canonical text of a member's membership (role, identity, device list), for comparing epochs. */
function memberText(m: EpochMember): string {
  return canonicalize(m as never);
}

/**
 * Is `signer` allowed to sign `next` after `prev`? An admin of `prev` may make
 * any change. A non-admin may only drop some of their own devices (revoking a
 * lost phone), changing nothing else. Either way the signing device stays a
 * member: it generated the new key, so it must be entitled to it.
 */
function authorised(prev: GroupEpoch | undefined, next: EpochRecordPayload, signerRole: GroupRole): boolean {
  const signerInNext = next.members.find((m) => m.user_id === next.signer_user_id);
  if (!signerInNext?.devices.some((d) => d.device_id === next.signer_device_id)) return false;
  if (prev === undefined) return signerInNext.role === 'admin';
  if (signerRole === 'admin') return true;
  const before = prev.record.payload.members;
  if (before.length !== next.members.length) return false;
  return before.every((b, i) => {
    const a = next.members[i]!;
    if (b.user_id !== next.signer_user_id) return memberText(a) === memberText(b);
    if (a.user_id !== b.user_id || a.role !== b.role || a.identity_key !== b.identity_key) return false;
    const kept = new Set(a.devices.map((d) => canonicalize(d as never)));
    return a.devices.length > 0 && [...kept].every((d) => b.devices.some((x) => canonicalize(x as never) === d));
  });
}

/**
 * Verifies one record against the previous verified epoch (or as genesis).
 * `cache` maps a device's canonical listing to the VerifiedDevice already made
 * for it, so a long chain doesn't re-import the same RSA keys.
 */
async function verifyRecord(
  chatId: string,
  prev: GroupEpoch | undefined,
  record: SignedEpochRecord,
  cache: Map<string, VerifiedDevice>,
): Promise<GroupEpoch> {
  const r = exactKeys(record, SIGNED_STATEMENT_FIELDS);
  const type = (r.payload as { type?: unknown } | null)?.type;
  const v2 = type === GROUP_EPOCH_TYPE;
  // Version 1 only before any version 2 record: no downgrade.
  if (!v2 && (type !== LEGACY_GROUP_EPOCH_TYPE || prev?.record.payload.type === GROUP_EPOCH_TYPE)) fail();
  const p = exactKeys(r.payload, v2 ? GROUP_EPOCH_FIELDS : GROUP_EPOCH_V1_FIELDS) as unknown as EpochRecordPayload;
  if (p.chat_id !== chatId) fail();
  if (v2) checkMetadataShape(p.metadata);
  if (p.epoch !== (prev ? prev.epoch + 1 : 1)) fail();
  if (typeof p.prev_hash !== 'string' || !equalStrings(p.prev_hash, prev ? prev.hash : '')) fail();
  if (!Number.isSafeInteger(p.created_at) || p.created_at < 0) fail();
  fromBase64Url(p.key_commitment, HASH_LENGTH);
  if (!isUuid(p.signer_user_id) || !isUuid(p.signer_device_id)) fail();
  const signature = fromBase64Url(r.signature as string, ED25519_SIGNATURE_LENGTH);
  if (!Array.isArray(p.members) || p.members.length === 0) fail();

  const members = new Map<string, GroupMember>();
  const deviceIds = new Set<string>();
  for (const raw of p.members) {
    const m = exactKeys(raw, EPOCH_MEMBER_FIELDS) as unknown as EpochMember;
    if (!isUuid(m.user_id) || (m.role !== 'admin' && m.role !== 'member') || typeof m.identity_key !== 'string') fail();
    if (!Array.isArray(m.devices) || m.devices.length === 0) fail();
    if (!sortedStrictly(m.devices.map((d: EpochDevice) => d?.device_id))) fail();
    const devices = new Map<string, VerifiedDevice>();
    for (const rawDevice of m.devices) {
      const d = exactKeys(rawDevice, EPOCH_DEVICE_FIELDS) as unknown as EpochDevice;
      if (deviceIds.has(d.device_id)) fail();
      deviceIds.add(d.device_id);
      const listing = { ...d, user_id: m.user_id, identity_key: m.identity_key };
      const cacheKey = canonicalize(listing as never);
      let device = cache.get(cacheKey);
      if (!device) {
        device = await verifyDevice(listing, m.identity_key);
        cache.set(cacheKey, device);
      }
      devices.set(d.device_id, device);
    }
    members.set(m.user_id, { userId: m.user_id, role: m.role, identityKey: m.identity_key, devices });
  }
  if (!sortedStrictly(p.members.map((m) => m.user_id))) fail();
  if (![...members.values()].some((m) => m.role === 'admin')) fail();

  // Who may sign: the signer must be a member device of the previous epoch
  // (for genesis, of the record itself), with the key listed there.
  const authority = prev ? prev.members : members;
  const signerMember = authority.get(p.signer_user_id);
  const signerDevice = signerMember?.devices.get(p.signer_device_id);
  if (!signerMember || !signerDevice) fail();
  if (!ed25519Verify(deviceMaterial(signerDevice).signingKey, canonicalBytes(p as never), signature)) fail();
  if (!authorised(prev, p, signerMember.role)) fail();

  const frozen: SignedEpochRecord = JSON.parse(JSON.stringify({ payload: p, signature: r.signature })) as SignedEpochRecord;
  return { epoch: p.epoch, hash: await epochRecordHash(frozen), record: frozen, members };
}

function makeChain(chatId: string, epochs: GroupEpoch[]): GroupChain {
  const chain: GroupChain = Object.freeze({ chatId, epochs: Object.freeze(epochs), head: epochs[epochs.length - 1]! });
  chains.add(chain);
  return chain;
}

/**
 * Verifies a chat's epoch records from genesis: each record is for this chat,
 * numbered one past the previous, names the previous record's hash, lists only
 * devices whose certificates verify under the listed identity keys, and is
 * signed by a device that the previous record (for genesis, the record itself)
 * lists, with a role that allows the change. `trustedHead`, a record hash this
 * client verified before, must appear in the chain: a server can't swap in a
 * different history. Compare the identity keys in the result with your pins.
 * Any failure is {@link CannotDecryptError}.
 * @example
 * const chain = await verifyGroupChain(records, { chatId, trustedHead: stored.head });
 */
export async function verifyGroupChain(
  records: readonly SignedEpochRecord[],
  options: { chatId: string; trustedHead?: { epoch: number; hash: string } },
): Promise<GroupChain> {
  return failClosed(async () => {
    if (!isUuid(options.chatId) || !Array.isArray(records) || records.length === 0) fail();
    const cache = new Map<string, VerifiedDevice>();
    const epochs: GroupEpoch[] = [];
    for (const record of records) epochs.push(await verifyRecord(options.chatId, epochs[epochs.length - 1], record, cache));
    const t = options.trustedHead;
    if (t !== undefined) {
      const at = epochs[t.epoch - 1];
      if (!at || typeof t.hash !== 'string' || !equalStrings(at.hash, t.hash)) fail();
    }
    return makeChain(options.chatId, epochs);
  });
}

/**
 * Appends records to an already verified chain, with the same checks as
 * {@link verifyGroupChain}.
 * @example
 * chain = await extendGroupChain(chain, [newRecord]);
 */
export async function extendGroupChain(chain: GroupChain, records: readonly SignedEpochRecord[]): Promise<GroupChain> {
  return failClosed(async () => {
    assertChain(chain);
    if (!Array.isArray(records)) fail();
    return appendRecords(chain.chatId, chain.epochs, records, headDevices(chain));
  });
}

function headDevices(chain: GroupChain): VerifiedDevice[] {
  return [...chain.head.members.values()].flatMap((m) => [...m.devices.values()]);
}

/**
 * Verifies `records` on top of the verified `epochs` (none for genesis).
 * `known` devices came from {@link verifyDevice} already; a record listing one
 * with exactly the same fields (the same canonical listing, identity key
 * included) reuses it instead of verifying the certificate again.
 */
async function appendRecords(
  chatId: string,
  epochs: readonly GroupEpoch[],
  records: readonly SignedEpochRecord[],
  known: readonly VerifiedDevice[],
): Promise<GroupChain> {
  const cache = new Map<string, VerifiedDevice>();
  for (const d of known) {
    cache.set(canonicalize({ device_id: d.deviceId, encryption_key: d.encryptionKey, signing_key: d.signingKey, issued_at: d.issuedAt, certificate: d.certificate, user_id: d.userId, identity_key: d.identityKey }), d);
  }
  const out = [...epochs];
  for (const record of records) out.push(await verifyRecord(chatId, out[out.length - 1], record, cache));
  return makeChain(chatId, out);
}

function memberListing(members: readonly GroupMemberInput[]): EpochMember[] {
  if (!Array.isArray(members) || members.length === 0) throw new TypeError('members: expected at least one');
  const out = members.map((m) => {
    if (m.role !== 'admin' && m.role !== 'member') throw new TypeError('members: bad role');
    if (!Array.isArray(m.devices) || m.devices.length === 0) throw new TypeError('members: each needs a device');
    const first = m.devices[0]!;
    for (const d of m.devices) {
      deviceMaterial(d);
      if (d.userId !== first.userId || d.identityKey !== first.identityKey) throw new TypeError('members: devices of one member differ');
    }
    const devices = [...m.devices]
      .sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1))
      .map((d) => ({ device_id: d.deviceId, encryption_key: d.encryptionKey, signing_key: d.signingKey, issued_at: d.issuedAt, certificate: d.certificate }));
    return { user_id: first.userId, role: m.role, identity_key: first.identityKey, devices };
  });
  out.sort((a, b) => (a.user_id < b.user_id ? -1 : 1));
  for (let i = 1; i < out.length; i++) if (out[i - 1]!.user_id === out[i]!.user_id) throw new TypeError('members: duplicate user');
  return out;
}

async function issueEpoch(
  chatId: string,
  prev: GroupChain | undefined,
  signer: LocalDevice,
  members: readonly GroupMemberInput[],
  createdAt: number,
  metadata: GroupMetadata,
  entropy: EntropySource,
): Promise<EpochUpdate> {
  assertUuid(chatId, 'chatId');
  assertUuid(signer?.userId, 'signer.userId');
  assertUuid(signer.deviceId, 'signer.deviceId');
  assertUint(createdAt, 'createdAt');
  const listing = memberListing(members);
  const me = listing.find((m) => m.user_id === signer.userId)?.devices.find((d) => d.device_id === signer.deviceId);
  if (!me || !equalBytes(fromBase64Url(me.signing_key), signer.keys.signing.publicKey)) {
    throw new TypeError('signer: its device must be listed as a member');
  }
  const epoch = prev ? prev.head.epoch + 1 : 1;
  const key = entropy.randomBytes(32);
  const sealedMetadata = await sealGroupMetadata(key, chatId, epoch, metadata, entropy);
  const payload: EpochRecordPayload = {
    type: GROUP_EPOCH_TYPE,
    chat_id: chatId,
    epoch,
    prev_hash: prev ? prev.head.hash : '',
    members: listing,
    key_commitment: toBase64Url(await epochKeyCommitment(key, chatId, epoch)),
    signer_user_id: signer.userId,
    signer_device_id: signer.deviceId,
    created_at: createdAt,
    metadata: sealedMetadata,
  };
  const record: SignedEpochRecord = { payload, signature: toBase64Url(ed25519Sign(signer.keys.signing.secretKey, canonicalBytes(payload as never))) };
  let chain: GroupChain;
  try {
    // The same checks a member runs, minus re-verifying the certificates of
    // the VerifiedDevices the caller passed in (memberListing checked them).
    const known = [...(prev ? headDevices(prev) : []), ...members.flatMap((m) => m.devices)];
    chain = await appendRecords(chatId, prev ? prev.epochs : [], [record], known);
  } catch {
    throw new TypeError('epoch: the signer may not make this change');
  }
  const recordHash = chain.head.hash;
  const wrappedKeys: WrappedKey[] = [];
  for (const m of chain.head.members.values()) {
    for (const d of m.devices.values()) {
      const wrapped = await wrapSecret(deviceMaterial(d).encryptionKey, key, epochKeyLabel(chatId, epoch, recordHash, d.deviceId), entropy);
      wrappedKeys.push({ device_id: d.deviceId, wrapped_key: toBase64Url(wrapped) });
    }
  }
  return { record, wrappedKeys, chain, epochKey: { chatId, epoch, recordHash, key } };
}

/**
 * Creates a group chat's genesis epoch (epoch 1), signed by `admin`, whose
 * device must be among `members` with role admin. Returns the record, the new
 * epoch key wrapped for every listed device, and the verified one-record chain.
 * @example
 * const { record, wrappedKeys, epochKey, chain } = await createGroup({
 *   chatId, admin: me, createdAt: Date.now(), metadata: { title: 'Weekend' },
 *   members: [{ role: 'admin', devices: myDevices }, { role: 'member', devices: bobDevices }],
 * });
 */
export async function createGroup(
  params: { chatId: string; admin: LocalDevice; members: readonly GroupMemberInput[]; createdAt: number; metadata?: GroupMetadata },
  entropy: EntropySource = systemEntropy,
): Promise<EpochUpdate> {
  return issueEpoch(params.chatId, undefined, params.admin, params.members, params.createdAt, params.metadata ?? { title: '' }, entropy);
}

/**
 * Starts the next epoch with a fresh key and the given member list: after a
 * member is removed or a device revoked, or to add members. Removed devices
 * get no wrapped key, so they can't read anything sent in the new epoch.
 * @example
 * const next = await rotateEpoch({ chain, signer: me, createdAt: Date.now(), members: withoutCarol, metadata: { title } });
 */
export async function rotateEpoch(
  params: { chain: GroupChain; signer: LocalDevice; members: readonly GroupMemberInput[]; createdAt: number; metadata?: GroupMetadata },
  entropy: EntropySource = systemEntropy,
): Promise<EpochUpdate> {
  assertChain(params.chain);
  return issueEpoch(params.chain.chatId, params.chain, params.signer, params.members, params.createdAt, params.metadata ?? { title: '' }, entropy);
}

/**
 * Unwraps this device's copy of an epoch key and checks it against the key
 * commitment in the signed record, so every member holds the key the signer
 * committed to.
 *
 * A device listed in that epoch needs nothing else. A device that is not
 * listed (a member's device linked after the record was signed, handed the
 * key with {@link shareEpochKey}) passes its own `deviceRecord`: it is
 * accepted only if the record's user is a member of that epoch and the
 * record verifies under the identity key the epoch record lists for that
 * member, with this device's own keys. Such a device can read the epoch but
 * can't send in it: recipients accept only senders the record lists.
 * Any failure is {@link CannotDecryptError}.
 * @example
 * const epochKey = await unwrapEpochKey({ chain, epoch: 3, wrappedKey: row.wrapped_key, recipient: me });
 * // a device the record does not list yet:
 * const readOnly = await unwrapEpochKey({ chain, epoch: 3, wrappedKey, recipient: me, deviceRecord: myRecord });
 */
export async function unwrapEpochKey(params: {
  chain: GroupChain;
  epoch: number;
  wrappedKey: WrappedKey | string;
  recipient: LocalDevice;
  /** This device's own directory record; needed only when the epoch record does not list this device. */
  deviceRecord?: DeviceRecord;
}): Promise<EpochKey> {
  return failClosed(async () => {
    const { chain, epoch, recipient } = params;
    assertChain(chain);
    const e = chain.epochs[epoch - 1];
    if (!e || e.epoch !== epoch) fail();
    const member = e.members.get(recipient.userId);
    const listed = member?.devices.get(recipient.deviceId);
    if (listed) {
      if (!equalBytes(fromBase64Url(listed.signingKey), recipient.keys.signing.publicKey)) fail();
    } else {
      // Not listed: a certified device of a listed member, certified by the
      // identity key this record lists for that member.
      const r = params.deviceRecord;
      if (!member || typeof r !== 'object' || r === null) fail();
      if (r.user_id !== recipient.userId || r.device_id !== recipient.deviceId) fail();
      const own = await verifyDevice(r, member.identityKey);
      if (!equalBytes(deviceMaterial(own).signingKey, recipient.keys.signing.publicKey)) fail();
      if (!equalBytes(fromBase64Url(own.encryptionKey), recipient.keys.encryption.spki)) fail();
    }
    const wk = params.wrappedKey;
    if (typeof wk !== 'string' && wk?.device_id !== recipient.deviceId) fail();
    const wrapped = fromBase64Url(typeof wk === 'string' ? wk : wk.wrapped_key);
    const key = await unwrapSecret(recipient.keys.encryption.privateKey, wrapped, epochKeyLabel(chain.chatId, epoch, e.hash, recipient.deviceId));
    const commitment = await epochKeyCommitment(key, chain.chatId, epoch);
    if (!equalBytes(commitment, fromBase64Url(e.record.payload.key_commitment, HASH_LENGTH))) {
      wipe(key);
      fail();
    }
    return { chatId: chain.chatId, epoch, recordHash: e.hash, key };
  });
}

/**
 * Wraps an epoch key this device holds for another certified device of a
 * member of that epoch that the record does not list (typically one the
 * member linked after the record was signed), with the same OAEP label as
 * the signer's copies. The device reads that epoch with
 * {@link unwrapEpochKey} and its own `deviceRecord`; it can send only once a
 * later epoch lists it. Refuses (TypeError) a device whose user is not a
 * member of that epoch, or whose identity key is not the one the record
 * lists for that member, and a key that doesn't belong to the chain.
 * Publish the result with the chat service's AddEpochKeys.
 * @example
 * const row = await shareEpochKey({ chain, epochKey, device: await verifyDevice(newPhone, myIdentityKey) });
 */
export async function shareEpochKey(
  params: { chain: GroupChain; epochKey: EpochKey; device: VerifiedDevice },
  entropy: EntropySource = systemEntropy,
): Promise<WrappedKey> {
  const { chain, epochKey, device } = params;
  assertChain(chain);
  const { encryptionKey } = deviceMaterial(device);
  let e: GroupEpoch;
  try {
    e = checkEpochKey(chain, epochKey);
    const commitment = await epochKeyCommitment(epochKey.key, chain.chatId, epochKey.epoch);
    if (!equalBytes(commitment, fromBase64Url(e.record.payload.key_commitment, HASH_LENGTH))) fail();
  } catch {
    throw new TypeError('epochKey: does not belong to this chain');
  }
  const member = e.members.get(device.userId);
  if (!member) throw new TypeError('device: its user is not a member of that epoch');
  if (!equalBytes(fromBase64Url(member.identityKey), fromBase64Url(device.identityKey))) {
    throw new TypeError('device: not certified by the identity key the epoch lists for its user');
  }
  const wrapped = await wrapSecret(encryptionKey, epochKey.key, epochKeyLabel(chain.chatId, e.epoch, e.hash, device.deviceId), entropy);
  return { device_id: device.deviceId, wrapped_key: toBase64Url(wrapped) };
}


/** The verified epoch an epoch key belongs to (same chat, epoch and record hash). @internal */
export function checkEpochKey(chain: GroupChain, k: EpochKey): GroupEpoch {
  if (typeof k !== 'object' || k === null || !(k.key instanceof Uint8Array) || k.key.length !== 32) fail();
  const e = chain.epochs[k.epoch - 1];
  if (!e || k.chatId !== chain.chatId || !equalStrings(e.hash, k.recordHash)) fail();
  return e;
}

/**
 * The metadata (title, ...) of the epoch `epochKey` belongs to, decrypted
 * from its verified record; `null` for a version 1 record, which has none.
 * Any failure is {@link CannotDecryptError}.
 * @example
 * const { title } = (await openGroupMetadata({ chain, epochKey })) ?? { title: '' };
 */
export async function openGroupMetadata(params: { chain: GroupChain; epochKey: EpochKey }): Promise<GroupMetadata | null> {
  return failClosed(async () => {
    assertChain(params.chain);
    const e = checkEpochKey(params.chain, params.epochKey);
    const sealed = e.record.payload.metadata;
    if (sealed === undefined) return null;
    return openSealedMetadata(params.epochKey.key, params.chain.chatId, e.epoch, sealed);
  });
}
