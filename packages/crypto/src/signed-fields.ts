// The signed structures of the protocol (docs/protocol.md), each defined once:
// its `type` (or version) and the exact member names of every object whose
// canonical JSON (canonical-json.ts) is signed or hashed. The client code that
// builds and verifies them (certificate.ts, envelope.ts, group.ts,
// group-leave.ts, device-list.ts, digest-consent.ts, message-delete.ts,
// chat-timer.ts) and the services that
// check them (chat's and identity's domain/validation.ts, through
// `@bil/crypto/protocol`) read these lists, so a member added on one side and
// not the other can't happen. Pure: no keys, no I/O.

/** The `type` of a device-certificate payload. */
export const DEVICE_CERTIFICATE_TYPE = 'bil.device-certificate.v1' as const;
/** The `type` of the epoch records clients write: version 2 carries encrypted group metadata. */
export const GROUP_EPOCH_TYPE = 'bil.group-epoch.v2' as const;
/** Records written before version 2 (no metadata): still verified in stored chains, never written, never after a v2 record. */
export const LEGACY_GROUP_EPOCH_TYPE = 'bil.group-epoch.v1' as const;
/** The `type` of a signed leave. */
export const GROUP_LEAVE_TYPE = 'bil.group-leave.v1' as const;
/** The `type` of a signed device list. */
export const DEVICE_LIST_TYPE = 'bil.device-list.v1' as const;
/** The `type` of a signed digest consent. */
export const DIGEST_CONSENT_TYPE = 'bil.digest-consent.v1' as const;
/** The `type` of a signed message tombstone (delete for everyone). */
export const MESSAGE_DELETE_TYPE = 'bil.message-delete.v1' as const;
/** The `type` of a signed disappearing-message timer statement (personal chats). */
export const CHAT_TIMER_TYPE = 'bil.chat-timer.v1' as const;
/** Shortest disappearing-message timer, in milliseconds (30 s); 0 switches the timer off. */
export const MIN_DISAPPEARING_MS = 30_000;
/** Longest disappearing-message timer, in milliseconds (365 days). */
export const MAX_DISAPPEARING_MS = 365 * 24 * 3600 * 1000;
/** Envelope header version written for new messages (adds epoch_hash and recipient_user_id). */
export const ENVELOPE_VERSION = 2;
/** Envelope header version of messages stored before version 2: still readable, never written. */
export const LEGACY_ENVELOPE_VERSION = 1;

/** The member names of one signed object, and their sorted comma-joined text. */
export interface FieldSet<K extends string = string> {
  readonly names: readonly K[];
  /** `Object.keys(v).sort().join()` of an object with exactly these members. */
  readonly text: string;
}

function fields<const K extends string>(...names: K[]): FieldSet<K> {
  return Object.freeze({ names: Object.freeze(names), text: [...names].sort().join() });
}

/** The members of one field set, as a union type. */
export type FieldName<S extends FieldSet> = S['names'][number];

/** Every signed statement (epoch record, leave, device list, digest consent): the payload and its signature. */
export const SIGNED_STATEMENT_FIELDS = fields('payload', 'signature');
/** An envelope: header, ciphertext and the sender device's signature. */
export const ENVELOPE_FIELDS = fields('ciphertext', 'header', 'signature');
/** Envelope header version 1 (stored messages only). */
export const ENVELOPE_HEADER_V1_FIELDS = fields(
  'chat_id',
  'commitment',
  'counter',
  'epoch',
  'message_id',
  'nonce',
  'scheme',
  'sender_device_id',
  'sender_user_id',
  'suite',
  'timestamp',
  'v',
);
/** Envelope header version 2: version 1 plus epoch_hash and recipient_user_id (14 members). */
export const ENVELOPE_HEADER_FIELDS = fields(...ENVELOPE_HEADER_V1_FIELDS.names, 'epoch_hash', 'recipient_user_id');
/** The payload a device certificate signs (the certificate itself is the signature). */
export const DEVICE_CERTIFICATE_FIELDS = fields('type', 'user_id', 'identity_key', 'encryption_key', 'signing_key', 'issued_at');
/** Epoch record payload, version 1 (stored chains only). */
export const GROUP_EPOCH_V1_FIELDS = fields(
  'chat_id',
  'created_at',
  'epoch',
  'key_commitment',
  'members',
  'prev_hash',
  'signer_device_id',
  'signer_user_id',
  'type',
);
/** Epoch record payload, version 2: version 1 plus the encrypted `metadata`. */
export const GROUP_EPOCH_FIELDS = fields(...GROUP_EPOCH_V1_FIELDS.names, 'metadata');
/** A member in an epoch record. */
export const EPOCH_MEMBER_FIELDS = fields('devices', 'identity_key', 'role', 'user_id');
/** A device of a member in an epoch record. */
export const EPOCH_DEVICE_FIELDS = fields('certificate', 'device_id', 'encryption_key', 'issued_at', 'signing_key');
/** A signed leave's payload. */
export const GROUP_LEAVE_FIELDS = fields('chat_id', 'created_at', 'device_id', 'epoch', 'epoch_hash', 'type', 'user_id');
/** A signed device list's payload. */
export const DEVICE_LIST_FIELDS = fields('created_at', 'devices', 'identity_key', 'type', 'user_id', 'version');
/** One device in a signed device list. */
export const DEVICE_LIST_ENTRY_FIELDS = fields('added_at', 'device_id', 'encryption_key', 'signing_key');
/** A signed digest consent's payload. */
export const DIGEST_CONSENT_FIELDS = fields('chat_id', 'created_at', 'device_id', 'include', 'type', 'user_id', 'version');
/** A signed message tombstone's payload. */
export const MESSAGE_DELETE_FIELDS = fields('chat_id', 'deleted_at', 'message_id', 'sender_device_id', 'sender_user_id', 'type');

/** A signed timer statement's payload. */
export const CHAT_TIMER_FIELDS = fields('chat_id', 'created_at', 'disappearing_ms', 'set_by_device_id', 'set_by_user_id', 'type', 'version');

/** A disappearing-message timer in ms is 0 (off) or MIN_DISAPPEARING_MS to MAX_DISAPPEARING_MS. */
export function isDisappearingMs(ms: unknown): ms is number {
  return typeof ms === 'number' && Number.isSafeInteger(ms) && (ms === 0 || (ms >= MIN_DISAPPEARING_MS && ms <= MAX_DISAPPEARING_MS));
}

/**
 * True if `value` is an object (not an array) with exactly the members of `set`.
 * @example
 * if (!hasExactFields(leave.payload, GROUP_LEAVE_FIELDS)) throw new Error('not a leave');
 */
export function hasExactFields(value: unknown, set: FieldSet): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).sort().join() === set.text;
}
