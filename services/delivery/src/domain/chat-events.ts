// The `data` of a `chat_event` frame (docs/ws-protocol.md, "chat_event
// data"): chat's integration events (proto3 JSON: lowerCamelCase, enums by
// their proto names, 64-bit integers as strings) rewritten to the REST API's
// conventions (docs/api.md): snake_case fields, enums as the short lower-case
// values REST uses (`group`, `admin`, `left`), integers as JSON numbers. Each
// kind has an explicit field list; nothing else of the event reaches clients.

type Payload = Record<string, unknown>;
type FieldKind = 'string' | 'integer' | 'strings' | 'members' | 'chat_type' | 'role' | 'removal_reason' | 'rotation_reason';

/** Chat types, member roles and reasons as REST spells them: the proto enum name without its prefix, lower case. */
export const CHAT_EVENT_ENUMS = {
  chat_type: ['personal', 'group'],
  role: ['owner', 'admin', 'member'],
  removal_reason: ['removed', 'left', 'account_deleted'],
  rotation_reason: ['member_removed', 'device_revoked', 'account_deleted', 'member_left'],
} as const;

const PREFIX: Record<keyof typeof CHAT_EVENT_ENUMS, string> = {
  chat_type: 'CHAT_TYPE_',
  role: 'MEMBER_ROLE_',
  removal_reason: 'MEMBER_REMOVAL_REASON_',
  rotation_reason: 'EPOCH_ROTATION_REASON_',
};

/**
 * Every `chat_event` kind with its `data` fields, in order: field → [JSON type, source field of the event].
 * The JSON type is the documented one: `string`, `integer` (a JSON number), `string[]`, `member[]`
 * (`{user_id, role}`) or an enum (its values in {@link CHAT_EVENT_ENUMS}).
 */
export const CHAT_EVENT_DATA = {
  chat_created: {
    chat_id: ['string', 'chatId'],
    type: ['chat_type', 'type'],
    created_by: ['string', 'createdBy'],
    members: ['members', 'members'],
    epoch: ['integer', 'epoch'],
    occurred_at: ['string', 'occurredAt'],
  },
  member_added: {
    chat_id: ['string', 'chatId'],
    user_id: ['string', 'userId'],
    role: ['role', 'role'],
    added_by: ['string', 'addedBy'],
    joined_seq: ['integer', 'joinedSeq'],
    occurred_at: ['string', 'occurredAt'],
  },
  member_removed: {
    chat_id: ['string', 'chatId'],
    user_id: ['string', 'userId'],
    removed_by: ['string', 'removedBy'],
    reason: ['removal_reason', 'reason'],
    left_seq: ['integer', 'leftSeq'],
    occurred_at: ['string', 'occurredAt'],
  },
  role_changed: {
    chat_id: ['string', 'chatId'],
    user_id: ['string', 'userId'],
    role: ['role', 'role'],
    changed_by: ['string', 'changedBy'],
    occurred_at: ['string', 'occurredAt'],
  },
  chat_deleted: {
    chat_id: ['string', 'chatId'],
    deleted_by: ['string', 'deletedBy'],
    member_user_ids: ['strings', 'memberUserIds'],
    occurred_at: ['string', 'occurredAt'],
  },
  epoch_published: {
    chat_id: ['string', 'chatId'],
    epoch: ['integer', 'epoch'],
    record_hash: ['string', 'recordHash'],
    signer_user_id: ['string', 'signerUserId'],
    signer_device_id: ['string', 'signerDeviceId'],
    device_ids: ['strings', 'deviceIds'],
    occurred_at: ['string', 'occurredAt'],
  },
  epoch_keys_added: {
    chat_id: ['string', 'chatId'],
    epoch: ['integer', 'epoch'],
    device_ids: ['strings', 'deviceIds'],
    added_by: ['string', 'addedBy'],
    occurred_at: ['string', 'occurredAt'],
  },
  epoch_rotation_required: {
    chat_id: ['string', 'chatId'],
    epoch: ['integer', 'epoch'],
    reason: ['rotation_reason', 'reason'],
    user_id: ['string', 'userId'],
    device_id: ['string', 'deviceId'],
    occurred_at: ['string', 'occurredAt'],
  },
  message_deleted: {
    chat_id: ['string', 'chatId'],
    seq: ['integer', 'seq'],
    message_id: ['string', 'messageId'],
    sender_user_id: ['string', 'senderUserId'],
    tombstone: ['string', 'tombstone'],
    occurred_at: ['string', 'occurredAt'],
  },
  disappearing_timer_set: {
    chat_id: ['string', 'chatId'],
    disappearing_ms: ['integer', 'disappearingMs'],
    set_by: ['string', 'setBy'],
    occurred_at: ['string', 'occurredAt'],
  },
} as const satisfies Record<string, Record<string, readonly [FieldKind, string]>>;

export type ChatEventKind = keyof typeof CHAT_EVENT_DATA;
export const CHAT_EVENT_KINDS = Object.keys(CHAT_EVENT_DATA) as ChatEventKind[];

/** The documented JSON type of each field kind (docs/ws-protocol.md tables). */
export const FIELD_TYPES: Record<FieldKind, string> = {
  string: 'string',
  integer: 'integer',
  strings: 'string[]',
  members: 'member[]',
  chat_type: 'string',
  role: 'string',
  removal_reason: 'string',
  rotation_reason: 'string',
};

export function isChatEventKind(name: string): name is ChatEventKind {
  return Object.hasOwn(CHAT_EVENT_DATA, name);
}

function enumValue(kind: keyof typeof CHAT_EVENT_ENUMS, v: unknown): string {
  const name = typeof v === 'string' ? v : '';
  const short = name.startsWith(PREFIX[kind]) ? name.slice(PREFIX[kind].length).toLowerCase() : name.toLowerCase();
  return (CHAT_EVENT_ENUMS[kind] as readonly string[]).includes(short) ? short : '';
}

const integer = (v: unknown): number => {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : 0;
  return Number.isSafeInteger(n) ? n : 0;
};
const string = (v: unknown): string => (typeof v === 'string' ? v : '');
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

function convert(kind: FieldKind, v: unknown): unknown {
  switch (kind) {
    case 'string':
      return string(v);
    case 'integer':
      return integer(v);
    case 'strings':
      return strings(v);
    case 'members':
      return (Array.isArray(v) ? v : []).map((m: Payload) => ({ user_id: string(m?.userId), role: enumValue('role', m?.role) }));
    default:
      return enumValue(kind, v);
  }
}

/** The `data` of a chat_event of `kind`, from chat's event payload: exactly the documented fields. */
export function chatEventData(kind: ChatEventKind, payload: object): Record<string, unknown> {
  const p = new Map(Object.entries(payload));
  const out: Record<string, unknown> = {};
  for (const [field, [type, source]] of Object.entries(CHAT_EVENT_DATA[kind]) as [string, readonly [FieldKind, string]][]) {
    out[field] = convert(type, p.get(source));
  }
  return out;
}
