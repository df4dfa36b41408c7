// Input rules of the chat context. Pure functions: each returns the
// normalised value or throws an AppError naming the field and the reason.
// The shapes of envelopes and epoch records are fixed by docs/protocol.md;
// the server checks them strictly (exact members, types, lengths) because a
// document a client can't verify is worthless to store, but it never tries
// to decrypt anything.
//
// Past 400 lines on purpose: it is the one place where every wire document
// the server checks (envelope header v2, epoch record v2, signed leave,
// tombstone, timer statement) is
// spelled out with the same strict helpers (exact members, strict base64url,
// canonical JSON, Ed25519), so the rules can be read against protocol.md side
// by side.
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import {
  ENVELOPE_FIELDS,
  ENVELOPE_HEADER_FIELDS,
  ENVELOPE_VERSION,
  EPOCH_DEVICE_FIELDS,
  EPOCH_MEMBER_FIELDS,
  GROUP_EPOCH_FIELDS,
  GROUP_EPOCH_TYPE,
  GROUP_LEAVE_FIELDS,
  GROUP_LEAVE_TYPE,
  LEGACY_GROUP_EPOCH_TYPE,
  MESSAGE_DELETE_FIELDS,
  MESSAGE_DELETE_TYPE,
  CHAT_TIMER_FIELDS,
  CHAT_TIMER_TYPE,
  MIN_DISAPPEARING_MS,
  MAX_DISAPPEARING_MS,
  SIGNED_STATEMENT_FIELDS,
  canonicalize,
  isDisappearingMs,
  type CanonicalValue,
  type FieldSet,
} from '@bil/crypto/protocol';
import { invalidArgument, type ErrorReason } from '@bil/runtime/domain';

// --- limits (defined once in @bil/proto/limits, documented in docs/chat.md) ---
import {
  MAX_CIPHERTEXT_CHARS,
  MAX_EPOCH_KEYS,
  MAX_EPOCH_RECORD_CHARS,
  MAX_LEAVE_CHARS,
  MAX_METADATA_BYTES,
  MAX_TOMBSTONE_CHARS,
  MAX_TIMER_STATEMENT_CHARS,
  MAX_WRAPPED_KEYS,
  MIN_METADATA_BYTES,
} from '@bil/proto/limits';

export { MAX_CIPHERTEXT_CHARS, MAX_EPOCH_KEYS, MAX_EPOCH_RECORD_CHARS, MAX_LEAVE_CHARS, MAX_METADATA_BYTES, MAX_WRAPPED_KEYS, MIN_METADATA_BYTES };

// The signed documents' versions, types and exact members (envelope header
// v2, epoch record v2 and its members and devices, signed leave) are the
// ones the clients sign with: one definition, in @bil/crypto/protocol.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const B64URL = /^[A-Za-z0-9_-]*$/;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID.test(value);
}

/** Ids are lowercase hyphenated UUIDs, the only form on the wire (protocol.md). */
export function validateUuid(raw: unknown, field: string): string {
  if (!isUuid(raw)) throw invalidArgument('invalid_id', `${field} must be a lowercase UUID`, { field });
  return raw;
}

/**
 * Group titles are end-to-end encrypted (epoch record v2 `metadata`): the
 * server stores none for a new group. An absent or empty `title` is fine;
 * anything else is refused rather than silently dropped, so a client that
 * still sends a plaintext title learns it at once.
 */
export function refusePlaintextTitle(raw: unknown): void {
  if (raw === undefined || raw === null || raw === '') return;
  throw invalidArgument(
    'plaintext_title_refused',
    'the server stores no group titles: leave title empty and put the title in the encrypted metadata of the epoch record (bil.group-epoch.v2)',
    { field: 'title' },
  );
}

/** A non-negative safe integer from a proto int64 (a string) or a number. */
export function validateSeq(raw: unknown, field: string): number {
  const n = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw invalidArgument('invalid_argument', `${field} must be a non-negative integer`, { field });
  }
  return n;
}

export function validateLimit(raw: unknown, def: number, max: number): number {
  const n = typeof raw === 'number' ? raw : 0;
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw invalidArgument('invalid_limit', `limit must be between 1 and ${max}`, { field: 'limit' });
  }
  return n === 0 ? def : n;
}

/**
 * Strict base64url (RFC 4648 §5) without padding: the alphabet only, and the
 * unused low bits of the last character zero, so each value has exactly one
 * encoding. Returns the decoded length.
 */
export function base64urlLength(raw: unknown, field: string, opts: { exact?: number[]; min?: number; maxChars: number }): number {
  const bad = () => invalidArgument('invalid_encoding', `${field} must be base64url without padding`, { field });
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > opts.maxChars || !B64URL.test(raw) || raw.length % 4 === 1) throw bad();
  const bytes = Buffer.from(raw, 'base64url');
  if (bytes.toString('base64url') !== raw) throw bad();
  if (opts.exact && !opts.exact.includes(bytes.length)) {
    throw invalidArgument('invalid_length', `${field} must be ${opts.exact.join(' or ')} bytes`, { field });
  }
  if (opts.min !== undefined && bytes.length < opts.min) {
    throw invalidArgument('invalid_length', `${field} must be at least ${opts.min} bytes`, { field });
  }
  return bytes.length;
}

function safeInt(v: unknown, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalidArgument('invalid_envelope', `${field} must be an integer ≥ ${min}`, { field });
  }
  return v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function exactKeys(v: Record<string, unknown>, set: FieldSet, code: ErrorReason, field: string): void {
  if (Object.keys(v).sort().join() !== set.text) {
    throw invalidArgument(code, `${field} must have exactly the members ${set.text.replace(/,/g, ', ')}`, { field });
  }
}

function parseJson(raw: unknown, field: 'envelope' | 'epoch_record' | 'leave' | 'tombstone' | 'timer_statement', maxChars: number, code: ErrorReason): unknown {
  if (typeof raw !== 'string' || raw.length === 0) throw invalidArgument(code, `${field} must be JSON text`, { field });
  if (raw.length > maxChars) {
    throw invalidArgument(`${field}_too_large`, `${field} is larger than ${maxChars} characters`, { field, limit: maxChars });
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw invalidArgument(code, `${field} is not valid JSON`, { field });
  }
}

// --- wrapped keys -----------------------------------------------------------

export interface WrappedKeyInput {
  deviceId: string;
  wrappedKey: string;
}

/** RSA-OAEP ciphertexts of a 3072- or 4096-bit key, one per device, no device twice. */
export function validateWrappedKeys(raw: unknown, field: string, max = MAX_WRAPPED_KEYS): WrappedKeyInput[] {
  if (!Array.isArray(raw)) throw invalidArgument('invalid_wrapped_keys', `${field} must be a list`, { field });
  if (raw.length > max) {
    throw invalidArgument('too_many_wrapped_keys', `${field}: at most ${max} wrapped keys`, { field, limit: max });
  }
  const seen = new Set<string>();
  return raw.map((k: unknown, i) => {
    const item = (k ?? {}) as { deviceId?: unknown; wrappedKey?: unknown };
    const deviceId = validateUuid(item.deviceId, `${field}[${i}].device_id`);
    base64urlLength(item.wrappedKey, `${field}[${i}].wrapped_key`, { exact: [384, 512], maxChars: 700 });
    if (seen.has(deviceId)) throw invalidArgument('duplicate_device', `${field} names device ${deviceId} twice`, { field, device_id: deviceId });
    seen.add(deviceId);
    return { deviceId, wrappedKey: item.wrappedKey as string };
  });
}

// --- envelopes --------------------------------------------------------------

/** Envelope header v2 (protocol.md, "Envelopes"), the only version accepted for new messages. */
export interface EnvelopeHeader {
  v: 2;
  suite: 'aes-256-gcm' | 'chacha20-poly1305';
  chat_id: string;
  message_id: string;
  sender_user_id: string;
  sender_device_id: string;
  scheme: 'direct' | 'group';
  epoch: number;
  /** Group: the record hash of `epoch` the sender used; direct: "". */
  epoch_hash: string;
  /** Direct: the other user of the personal chat; group: "". */
  recipient_user_id: string;
  counter: number;
  timestamp: number;
  nonce: string;
  commitment: string;
}

/**
 * A stored envelope. New ones are v2; MessagePosted events stored before
 * step 8 hold v1 headers (no epoch_hash, no recipient_user_id), which history
 * returns unchanged.
 */
export interface Envelope {
  header: EnvelopeHeader;
  ciphertext: string;
  signature: string;
}

/**
 * Parses an envelope's JSON text and checks its structure (protocol.md,
 * "Envelopes"): exactly {header, ciphertext, signature}; header version 2
 * (any other version is `unsupported_envelope_version`) with exactly its
 * fourteen members, their types and lengths; epoch 0, epoch_hash "" and a
 * recipient_user_id for `direct`, epoch ≥ 1, a 32-byte epoch_hash and
 * recipient_user_id "" for `group`; a ciphertext of 272 bytes to
 * MAX_CIPHERTEXT_CHARS characters, a 64-byte signature. Returns the envelope
 * with only those members. Whether epoch_hash and recipient_user_id name the
 * right epoch and user is the decider's to check.
 */
export function parseEnvelope(raw: unknown): Envelope {
  const value = parseJson(raw, 'envelope', MAX_CIPHERTEXT_CHARS + 4096, 'invalid_envelope');
  if (!isPlainObject(value)) throw invalidArgument('invalid_envelope', 'envelope must be a JSON object', { field: 'envelope' });
  exactKeys(value, ENVELOPE_FIELDS, 'invalid_envelope', 'envelope');
  const h = value.header;
  if (!isPlainObject(h)) throw invalidArgument('invalid_envelope', 'envelope.header must be an object', { field: 'envelope.header' });
  if (typeof h.v === 'number' && Number.isSafeInteger(h.v) && h.v !== ENVELOPE_VERSION) {
    throw invalidArgument(
      'unsupported_envelope_version',
      `envelope version ${h.v} is no longer accepted for new messages: this app is out of date, update it (new messages use envelope header version 2)`,
      { field: 'envelope.header.v', version: h.v, supported: [ENVELOPE_VERSION] },
    );
  }
  exactKeys(h, ENVELOPE_HEADER_FIELDS, 'invalid_envelope', 'envelope.header');
  if (h.v !== ENVELOPE_VERSION) throw invalidArgument('invalid_envelope', 'envelope.header.v must be 2', { field: 'envelope.header.v' });
  if (h.suite !== 'aes-256-gcm' && h.suite !== 'chacha20-poly1305') {
    throw invalidArgument('invalid_envelope', 'envelope.header.suite must be "aes-256-gcm" or "chacha20-poly1305"', { field: 'envelope.header.suite' });
  }
  for (const f of ['chat_id', 'message_id', 'sender_user_id', 'sender_device_id'] as const) {
    if (!isUuid(h[f])) throw invalidArgument('invalid_envelope', `envelope.header.${f} must be a lowercase UUID`, { field: `envelope.header.${f}` });
  }
  if (h.scheme !== 'direct' && h.scheme !== 'group') {
    throw invalidArgument('invalid_envelope', 'envelope.header.scheme must be "direct" or "group"', { field: 'envelope.header.scheme' });
  }
  const epoch = safeInt(h.epoch, 'envelope.header.epoch', 0);
  if ((h.scheme === 'direct') !== (epoch === 0)) {
    throw invalidArgument('invalid_envelope', 'envelope.header.epoch must be 0 for "direct" and at least 1 for "group"', { field: 'envelope.header.epoch' });
  }
  if (h.scheme === 'direct') {
    if (h.epoch_hash !== '') throw invalidArgument('invalid_envelope', 'envelope.header.epoch_hash must be "" for "direct"', { field: 'envelope.header.epoch_hash' });
    if (!isUuid(h.recipient_user_id)) {
      throw invalidArgument('invalid_envelope', 'envelope.header.recipient_user_id must be the other user\'s lowercase UUID for "direct"', {
        field: 'envelope.header.recipient_user_id',
      });
    }
  } else {
    if (typeof h.epoch_hash !== 'string' || h.epoch_hash === '') {
      throw invalidArgument('invalid_envelope', 'envelope.header.epoch_hash must be the record hash of the epoch for "group"', { field: 'envelope.header.epoch_hash' });
    }
    base64urlLength(h.epoch_hash, 'envelope.header.epoch_hash', { exact: [32], maxChars: 43 });
    if (h.recipient_user_id !== '') {
      throw invalidArgument('invalid_envelope', 'envelope.header.recipient_user_id must be "" for "group"', { field: 'envelope.header.recipient_user_id' });
    }
  }
  safeInt(h.counter, 'envelope.header.counter', 1);
  safeInt(h.timestamp, 'envelope.header.timestamp', 0);
  base64urlLength(h.nonce, 'envelope.header.nonce', { exact: [12], maxChars: 16 });
  base64urlLength(h.commitment, 'envelope.header.commitment', { exact: [32], maxChars: 43 });
  if (typeof value.ciphertext === 'string' && value.ciphertext.length > MAX_CIPHERTEXT_CHARS) {
    throw invalidArgument('envelope_too_large', `envelope.ciphertext is larger than ${MAX_CIPHERTEXT_CHARS} characters`, {
      field: 'envelope.ciphertext',
      limit: MAX_CIPHERTEXT_CHARS,
    });
  }
  base64urlLength(value.ciphertext, 'envelope.ciphertext', { min: 256 + 16, maxChars: MAX_CIPHERTEXT_CHARS });
  base64urlLength(value.signature, 'envelope.signature', { exact: [64], maxChars: 86 });
  return { header: h as unknown as EnvelopeHeader, ciphertext: value.ciphertext as string, signature: value.signature as string };
}

// --- canonical JSON and epoch records ----------------------------------------

/**
 * The canonical JSON text of a signed document (`@bil/crypto/protocol`
 * `canonicalize`, the one the clients sign with). What it refuses (a lone
 * surrogate, nesting deeper than 32, null, a float, a non-plain object) no
 * client can have signed, so the server refuses it too: `code`, naming
 * `field` and the reason, never an internal error.
 */
export function signedText(value: unknown, field: string, code: ErrorReason): string {
  try {
    return canonicalize(value as CanonicalValue);
  } catch (err) {
    const reason = err instanceof TypeError ? err.message.replace(/^canonical json: /, '') : 'not canonical';
    throw invalidArgument(code, `${field} has no canonical JSON (${reason}): no client can have signed it`, { field, reason });
  }
}

export type RecordRole = 'admin' | 'member';

export interface RecordDevice {
  deviceId: string;
  signingKey: string;
}

export interface RecordMember {
  userId: string;
  role: RecordRole;
  devices: RecordDevice[];
}

/** A structurally valid, signed epoch record v2 (its signature is checked separately). */
export interface EpochRecord {
  chatId: string;
  epoch: number;
  prevHash: string;
  signerUserId: string;
  signerDeviceId: string;
  members: RecordMember[];
  /** base64url(SHA-256(canonical JSON of {payload, signature})): what the next record's prev_hash names. */
  hash: string;
  /** The canonical bytes of the payload: what the signature covers. */
  signedBytes: string;
  signature: string;
  /** The record as received ({payload, signature}), stored as is. */
  document: Record<string, unknown>;
}

const recordError = (field: string, message: string) => invalidArgument('invalid_epoch_record', `epoch_record: ${message}`, { field });

/**
 * Parses a new epoch record (protocol.md, "Epoch record"; step 8: v2 only)
 * and computes its hash. A v1 record is `unsupported_record_version`: chains
 * stored before keep their v1 records, but every new epoch is v2, with the
 * encrypted group metadata (title) in `metadata`, which the server checks for
 * shape and size only and never decrypts.
 */
export function parseEpochRecord(raw: unknown): EpochRecord {
  const doc = parseJson(raw, 'epoch_record', MAX_EPOCH_RECORD_CHARS, 'invalid_epoch_record');
  if (!isPlainObject(doc)) throw recordError('epoch_record', 'must be a JSON object');
  exactKeys(doc, SIGNED_STATEMENT_FIELDS, 'invalid_epoch_record', 'epoch_record');
  const p = doc.payload;
  if (!isPlainObject(p)) throw recordError('payload', 'payload must be an object');
  if (p.type === LEGACY_GROUP_EPOCH_TYPE) {
    throw invalidArgument(
      'unsupported_record_version',
      `epoch records of type "${LEGACY_GROUP_EPOCH_TYPE}" are no longer accepted for new epochs: this app is out of date, update it (new epochs use "${GROUP_EPOCH_TYPE}" with encrypted metadata)`,
      { field: 'epoch_record.payload.type', supported: [GROUP_EPOCH_TYPE] },
    );
  }
  exactKeys(p, GROUP_EPOCH_FIELDS, 'invalid_epoch_record', 'epoch_record.payload');
  if (p.type !== GROUP_EPOCH_TYPE) throw recordError('payload.type', `type must be "${GROUP_EPOCH_TYPE}"`);
  validateMetadata(p.metadata);
  for (const f of ['chat_id', 'signer_user_id', 'signer_device_id'] as const) {
    if (!isUuid(p[f])) throw recordError(`payload.${f}`, `${f} must be a lowercase UUID`);
  }
  if (typeof p.epoch !== 'number' || !Number.isSafeInteger(p.epoch) || p.epoch < 1) throw recordError('payload.epoch', 'epoch must be an integer ≥ 1');
  if (typeof p.created_at !== 'number' || !Number.isSafeInteger(p.created_at) || p.created_at < 0) {
    throw recordError('payload.created_at', 'created_at must be a non-negative integer');
  }
  if (p.epoch === 1 ? p.prev_hash !== '' : typeof p.prev_hash !== 'string') throw recordError('payload.prev_hash', 'prev_hash must be "" for epoch 1');
  if (p.epoch > 1) base64urlLength(p.prev_hash, 'epoch_record.payload.prev_hash', { exact: [32], maxChars: 43 });
  base64urlLength(p.key_commitment, 'epoch_record.payload.key_commitment', { exact: [32], maxChars: 43 });
  base64urlLength(doc.signature, 'epoch_record.signature', { exact: [64], maxChars: 86 });
  if (!Array.isArray(p.members) || p.members.length === 0) throw recordError('payload.members', 'members must be a non-empty list');

  const deviceIds = new Set<string>();
  let previousUser = '';
  const members: RecordMember[] = p.members.map((m: unknown, i: number) => {
    const at = `payload.members[${i}]`;
    if (!isPlainObject(m)) throw recordError(at, 'each member must be an object');
    exactKeys(m, EPOCH_MEMBER_FIELDS, 'invalid_epoch_record', `epoch_record.${at}`);
    if (!isUuid(m.user_id)) throw recordError(`${at}.user_id`, 'user_id must be a lowercase UUID');
    if (m.user_id <= previousUser) throw recordError(`${at}.user_id`, 'members must be sorted by user_id without duplicates');
    previousUser = m.user_id;
    if (m.role !== 'admin' && m.role !== 'member') throw recordError(`${at}.role`, 'role must be "admin" or "member"');
    base64urlLength(m.identity_key, `epoch_record.${at}.identity_key`, { exact: [32], maxChars: 43 });
    if (!Array.isArray(m.devices) || m.devices.length === 0) throw recordError(`${at}.devices`, 'each member lists at least one device');
    let previousDevice = '';
    const devices = m.devices.map((d: unknown, j: number) => {
      const dat = `${at}.devices[${j}]`;
      if (!isPlainObject(d)) throw recordError(dat, 'each device must be an object');
      exactKeys(d, EPOCH_DEVICE_FIELDS, 'invalid_epoch_record', `epoch_record.${dat}`);
      if (!isUuid(d.device_id)) throw recordError(`${dat}.device_id`, 'device_id must be a lowercase UUID');
      if (d.device_id <= previousDevice) throw recordError(`${dat}.device_id`, 'devices must be sorted by device_id');
      if (deviceIds.has(d.device_id)) throw recordError(`${dat}.device_id`, 'a device appears twice in the record');
      previousDevice = d.device_id;
      deviceIds.add(d.device_id);
      base64urlLength(d.encryption_key, `epoch_record.${dat}.encryption_key`, { min: 1, maxChars: 1200 });
      base64urlLength(d.signing_key, `epoch_record.${dat}.signing_key`, { exact: [32], maxChars: 43 });
      base64urlLength(d.certificate, `epoch_record.${dat}.certificate`, { exact: [64], maxChars: 86 });
      if (typeof d.issued_at !== 'number' || !Number.isSafeInteger(d.issued_at) || d.issued_at < 0) {
        throw recordError(`${dat}.issued_at`, 'issued_at must be a non-negative integer');
      }
      return { deviceId: d.device_id, signingKey: d.signing_key as string };
    });
    return { userId: m.user_id, role: m.role, devices };
  });
  if (!members.some((m) => m.role === 'admin')) throw recordError('payload.members', 'at least one member must be an admin');

  const signedBytes = signedText(p, 'epoch_record.payload', 'invalid_epoch_record');
  const hash = epochRecordHash({ payload: p, signature: doc.signature });
  return {
    chatId: p.chat_id as string,
    epoch: p.epoch,
    prevHash: p.prev_hash as string,
    signerUserId: p.signer_user_id as string,
    signerDeviceId: p.signer_device_id as string,
    members,
    hash,
    signedBytes,
    signature: doc.signature as string,
    document: { payload: p, signature: doc.signature },
  };
}

/**
 * Record hash = base64url(SHA-256(canonical JSON of {payload, signature})),
 * computed exactly as clients compute it (packages/crypto `epochRecordHash`),
 * for v1 and v2 alike: `metadata` is one more string member of the payload.
 */
export function epochRecordHash(doc: { payload: Record<string, unknown>; signature: unknown }): string {
  const text = signedText({ payload: doc.payload, signature: doc.signature }, 'epoch_record', 'invalid_epoch_record');
  return createHash('sha256').update(text, 'utf8').digest('base64url');
}

/** `metadata`: strict base64url of nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16), at most MAX_METADATA_BYTES. */
function validateMetadata(raw: unknown): void {
  const field = 'epoch_record.payload.metadata';
  const maxChars = Math.ceil((MAX_METADATA_BYTES * 4) / 3);
  if (typeof raw === 'string' && raw.length > maxChars) {
    throw invalidArgument('invalid_length', `${field} must be at most ${MAX_METADATA_BYTES} bytes`, { field, limit: MAX_METADATA_BYTES });
  }
  base64urlLength(raw, field, { min: MIN_METADATA_BYTES, maxChars });
}

// --- signed leaves -------------------------------------------------------------

/** A structurally valid signed leave (protocol.md, "Signed leave"); its signature is checked separately. */
export interface SignedLeave {
  chatId: string;
  userId: string;
  deviceId: string;
  /** The head epoch the leaver had verified (≤ the current epoch). */
  epoch: number;
  /** Its record hash, as the leaver computed it. */
  epochHash: string;
  createdAt: number;
  /** The canonical bytes of the payload: what the signature covers. */
  signedBytes: string;
  signature: string;
  /** The leave as received ({payload, signature}), stored and shown as is. */
  document: Record<string, unknown>;
}

const leaveError = (field: string, message: string) => invalidArgument('invalid_leave', `leave: ${message}`, { field: `leave.${field}` });

/**
 * Parses a signed leave's JSON text: exactly {payload, signature}, the payload
 * exactly {type "bil.group-leave.v1", chat_id, user_id, device_id, epoch ≥ 1,
 * epoch_hash (32 bytes), created_at}, a 64-byte signature; at most
 * MAX_LEAVE_CHARS characters.
 */
export function parseLeave(raw: unknown): SignedLeave {
  const doc = parseJson(raw, 'leave', MAX_LEAVE_CHARS, 'invalid_leave');
  if (!isPlainObject(doc)) throw invalidArgument('invalid_leave', 'leave must be a JSON object', { field: 'leave' });
  exactKeys(doc, SIGNED_STATEMENT_FIELDS, 'invalid_leave', 'leave');
  const p = doc.payload;
  if (!isPlainObject(p)) throw leaveError('payload', 'payload must be an object');
  exactKeys(p, GROUP_LEAVE_FIELDS, 'invalid_leave', 'leave.payload');
  if (p.type !== GROUP_LEAVE_TYPE) throw leaveError('payload.type', `type must be "${GROUP_LEAVE_TYPE}"`);
  for (const f of ['chat_id', 'user_id', 'device_id'] as const) {
    if (!isUuid(p[f])) throw leaveError(`payload.${f}`, `${f} must be a lowercase UUID`);
  }
  if (typeof p.epoch !== 'number' || !Number.isSafeInteger(p.epoch) || p.epoch < 1) throw leaveError('payload.epoch', 'epoch must be an integer ≥ 1');
  if (typeof p.created_at !== 'number' || !Number.isSafeInteger(p.created_at) || p.created_at < 0) {
    throw leaveError('payload.created_at', 'created_at must be a non-negative integer');
  }
  base64urlLength(p.epoch_hash, 'leave.payload.epoch_hash', { exact: [32], maxChars: 43 });
  base64urlLength(doc.signature, 'leave.signature', { exact: [64], maxChars: 86 });
  return {
    chatId: p.chat_id as string,
    userId: p.user_id as string,
    deviceId: p.device_id as string,
    epoch: p.epoch,
    epochHash: p.epoch_hash as string,
    createdAt: p.created_at,
    signedBytes: signedText(p, 'leave.payload', 'invalid_leave'),
    signature: doc.signature as string,
    document: { payload: p, signature: doc.signature },
  };
}

// --- signed tombstones (delete for everyone) -------------------------------------

/** A structurally valid signed tombstone (protocol.md, "Delete for everyone"); its signature is checked separately. */
export interface SignedTombstone {
  chatId: string;
  messageId: string;
  senderUserId: string;
  senderDeviceId: string;
  deletedAt: number;
  signedBytes: string;
  signature: string;
  /** The tombstone as received ({payload, signature}), stored and returned as is. */
  document: Record<string, unknown>;
}

const tombstoneError = (field: string, message: string) => invalidArgument('invalid_tombstone', `tombstone: ${message}`, { field: `tombstone.${field}` });

/**
 * Parses a signed tombstone's JSON text: exactly {payload, signature}, the
 * payload exactly {type "bil.message-delete.v1", chat_id, message_id,
 * sender_user_id, sender_device_id, deleted_at}, a 64-byte signature; at most
 * MAX_TOMBSTONE_CHARS characters.
 */
export function parseTombstone(raw: unknown): SignedTombstone {
  const doc = parseJson(raw, 'tombstone', MAX_TOMBSTONE_CHARS, 'invalid_tombstone');
  if (!isPlainObject(doc)) throw invalidArgument('invalid_tombstone', 'tombstone must be a JSON object', { field: 'tombstone' });
  exactKeys(doc, SIGNED_STATEMENT_FIELDS, 'invalid_tombstone', 'tombstone');
  const p = doc.payload;
  if (!isPlainObject(p)) throw tombstoneError('payload', 'payload must be an object');
  exactKeys(p, MESSAGE_DELETE_FIELDS, 'invalid_tombstone', 'tombstone.payload');
  if (p.type !== MESSAGE_DELETE_TYPE) throw tombstoneError('payload.type', `type must be "${MESSAGE_DELETE_TYPE}"`);
  for (const f of ['chat_id', 'message_id', 'sender_user_id', 'sender_device_id'] as const) {
    if (!isUuid(p[f])) throw tombstoneError(`payload.${f}`, `${f} must be a lowercase UUID`);
  }
  if (typeof p.deleted_at !== 'number' || !Number.isSafeInteger(p.deleted_at) || p.deleted_at < 0) {
    throw tombstoneError('payload.deleted_at', 'deleted_at must be a non-negative integer');
  }
  base64urlLength(doc.signature, 'tombstone.signature', { exact: [64], maxChars: 86 });
  return {
    chatId: p.chat_id as string,
    messageId: p.message_id as string,
    senderUserId: p.sender_user_id as string,
    senderDeviceId: p.sender_device_id as string,
    deletedAt: p.deleted_at,
    signedBytes: signedText(p, 'tombstone.payload', 'invalid_tombstone'),
    signature: doc.signature as string,
    document: { payload: p, signature: doc.signature },
  };
}

// --- signed timer statements (personal chats' disappearing timer) ---------------

/** A structurally valid signed timer statement (protocol.md, "Disappearing messages"); its signature is checked separately. */
export interface SignedTimerStatement {
  chatId: string;
  disappearingMs: number;
  version: number;
  setByUserId: string;
  setByDeviceId: string;
  signedBytes: string;
  signature: string;
  /** The statement as received ({payload, signature}), stored and returned as is. */
  document: Record<string, unknown>;
}

const timerError = (field: string, message: string) => invalidArgument('invalid_timer_statement', `timer_statement: ${message}`, { field: `timer_statement.${field}` });

/**
 * Parses a signed timer statement's JSON text: exactly {payload, signature},
 * the payload exactly {type "bil.chat-timer.v1", chat_id, disappearing_ms,
 * version, set_by_user_id, set_by_device_id, created_at}, a 64-byte
 * signature; at most MAX_TIMER_STATEMENT_CHARS characters.
 */
export function parseTimerStatement(raw: unknown): SignedTimerStatement {
  const doc = parseJson(raw, 'timer_statement', MAX_TIMER_STATEMENT_CHARS, 'invalid_timer_statement');
  if (!isPlainObject(doc)) throw invalidArgument('invalid_timer_statement', 'timer_statement must be a JSON object', { field: 'timer_statement' });
  exactKeys(doc, SIGNED_STATEMENT_FIELDS, 'invalid_timer_statement', 'timer_statement');
  const p = doc.payload;
  if (!isPlainObject(p)) throw timerError('payload', 'payload must be an object');
  exactKeys(p, CHAT_TIMER_FIELDS, 'invalid_timer_statement', 'timer_statement.payload');
  if (p.type !== CHAT_TIMER_TYPE) throw timerError('payload.type', `type must be "${CHAT_TIMER_TYPE}"`);
  for (const f of ['chat_id', 'set_by_user_id', 'set_by_device_id'] as const) {
    if (!isUuid(p[f])) throw timerError(`payload.${f}`, `${f} must be a lowercase UUID`);
  }
  if (!isDisappearingMs(p.disappearing_ms)) {
    throw timerError('payload.disappearing_ms', `disappearing_ms must be 0 (off) or ${MIN_DISAPPEARING_MS} to ${MAX_DISAPPEARING_MS}`);
  }
  if (typeof p.version !== 'number' || !Number.isSafeInteger(p.version) || p.version < 1) throw timerError('payload.version', 'version must be a positive integer');
  if (typeof p.created_at !== 'number' || !Number.isSafeInteger(p.created_at) || p.created_at < 0) {
    throw timerError('payload.created_at', 'created_at must be a non-negative integer');
  }
  base64urlLength(doc.signature, 'timer_statement.signature', { exact: [64], maxChars: 86 });
  return {
    chatId: p.chat_id as string,
    disappearingMs: p.disappearing_ms,
    version: p.version,
    setByUserId: p.set_by_user_id as string,
    setByDeviceId: p.set_by_device_id as string,
    signedBytes: signedText(p, 'timer_statement.payload', 'invalid_timer_statement'),
    signature: doc.signature as string,
    document: { payload: p, signature: doc.signature },
  };
}

/** Ed25519 verification of a timer statement's signature with the setting device's key. */
export function timerStatementSignatureValid(t: SignedTimerStatement, signingKey: string): boolean {
  return ed25519Valid(t.signedBytes, t.signature, signingKey);
}

/** A disappearing timer in ms: 0 (off) or MIN_DISAPPEARING_MS to MAX_DISAPPEARING_MS. */
export function validateDisappearingMs(raw: unknown): number {
  const n = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : raw;
  if (!isDisappearingMs(n)) {
    throw invalidArgument('invalid_disappearing_ms', `disappearing_ms must be 0 (off) or ${MIN_DISAPPEARING_MS} to ${MAX_DISAPPEARING_MS}`, {
      field: 'disappearing_ms',
    });
  }
  return n;
}

// --- signatures ------------------------------------------------------------------

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Ed25519 (RFC 8032) verification of canonical bytes with a raw 32-byte public key (base64url). */
export function ed25519Valid(signedBytes: string, signature: string, signingKey: string): boolean {
  try {
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(signingKey, 'base64url')]), format: 'der', type: 'spki' });
    return verifySignature(null, Buffer.from(signedBytes, 'utf8'), key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

/** Ed25519 verification of the record signature with the signer device's key. */
export function epochSignatureValid(record: EpochRecord, signingKey: string): boolean {
  return ed25519Valid(record.signedBytes, record.signature, signingKey);
}

/** Ed25519 verification of a tombstone's signature with the deleting device's key. */
export function tombstoneSignatureValid(t: SignedTombstone, signingKey: string): boolean {
  return ed25519Valid(t.signedBytes, t.signature, signingKey);
}

/** Ed25519 verification of a leave's signature with the leaving device's key. */
export function leaveSignatureValid(leave: SignedLeave, signingKey: string): boolean {
  return ed25519Valid(leave.signedBytes, leave.signature, signingKey);
}

/**
 * The one personal chat of two users has an id derived from both user ids,
 * so creating it twice, from either side, names the same chat: a UUIDv8
 * (RFC 9562 §5.8) made of SHA-256("bil.personal-chat.v1:" ‖ smaller id ‖ ":" ‖ larger id).
 */
export function personalChatId(a: string, b: string): string {
  const [x, y] = [a, b].sort();
  const h = createHash('sha256').update(`bil.personal-chat.v1:${x}:${y}`, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
