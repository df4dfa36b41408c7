// The integration events on the bus, typed from the generated proto types on
// both ends: a producer builds the `__Output` type of the event's message (the
// proto3 JSON mapping: lowerCamelCase, enums by name, 64-bit integers as
// strings, every field present), and a consumer decodes what it received with
// `decodeEvent`, which validates each field against the message's field list
// and fills proto3 defaults for absent ones (older producers). The field lists
// are typed against the generated types (`Fields<T>` needs every field, with a
// kind that fits its type), so a field added to a .proto and regenerated fails
// to compile until it is listed here.
//
// Pure: no Node imports (the generated enum objects are plain constants).
import { ChatType } from '../gen/bil/chat/v1/ChatType.js';
import { MemberRole } from '../gen/bil/chat/v1/MemberRole.js';
import { MemberRemovalReason } from '../gen/bil/chat/v1/MemberRemovalReason.js';
import { EpochRotationReason } from '../gen/bil/chat/v1/EpochRotationReason.js';
import { DeviceRevocationReason } from '../gen/bil/identity/v1/DeviceRevocationReason.js';
import { DigestFailureReason } from '../gen/bil/digest/v1/DigestFailureReason.js';
import type { DigestReady__Output } from '../gen/bil/digest/v1/DigestReady.js';
import type { DigestFailed__Output } from '../gen/bil/digest/v1/DigestFailed.js';
import type { DigestPolicyChanged__Output } from '../gen/bil/digest/v1/DigestPolicyChanged.js';
import type { DigestConsentChanged__Output } from '../gen/bil/digest/v1/DigestConsentChanged.js';
import type { DigestKeyRotated__Output } from '../gen/bil/digest/v1/DigestKeyRotated.js';
import type { ChatCreated__Output } from '../gen/bil/chat/v1/ChatCreated.js';
import type { MemberAdded__Output } from '../gen/bil/chat/v1/MemberAdded.js';
import type { MemberRemoved__Output } from '../gen/bil/chat/v1/MemberRemoved.js';
import type { RoleChanged__Output } from '../gen/bil/chat/v1/RoleChanged.js';
import type { ChatDeleted__Output } from '../gen/bil/chat/v1/ChatDeleted.js';
import type { GroupEpochPublished__Output } from '../gen/bil/chat/v1/GroupEpochPublished.js';
import type { EpochKeysAdded__Output } from '../gen/bil/chat/v1/EpochKeysAdded.js';
import type { EpochRotationRequired__Output } from '../gen/bil/chat/v1/EpochRotationRequired.js';
import type { MessagePosted__Output } from '../gen/bil/chat/v1/MessagePosted.js';
import type { MessagesRead__Output } from '../gen/bil/chat/v1/MessagesRead.js';
import type { MessageDeleted__Output } from '../gen/bil/chat/v1/MessageDeleted.js';
import type { DisappearingTimerSet__Output } from '../gen/bil/chat/v1/DisappearingTimerSet.js';
import type { MemberEntry__Output } from '../gen/bil/chat/v1/MemberEntry.js';
import type { WrappedKey__Output } from '../gen/bil/chat/v1/WrappedKey.js';
import type { UserRegistered__Output } from '../gen/bil/identity/v1/UserRegistered.js';
import type { IdentityKeySet__Output } from '../gen/bil/identity/v1/IdentityKeySet.js';
import type { ProfileUpdated__Output } from '../gen/bil/identity/v1/ProfileUpdated.js';
import type { PasswordChanged__Output } from '../gen/bil/identity/v1/PasswordChanged.js';
import type { DeviceListPublished__Output } from '../gen/bil/identity/v1/DeviceListPublished.js';
import type { UserDeleted__Output } from '../gen/bil/identity/v1/UserDeleted.js';
import type { DeviceRegistered__Output } from '../gen/bil/identity/v1/DeviceRegistered.js';
import type { DeviceRevoked__Output } from '../gen/bil/identity/v1/DeviceRevoked.js';

export type {
  ChatCreated__Output as ChatCreated,
  MemberAdded__Output as MemberAdded,
  MemberRemoved__Output as MemberRemoved,
  RoleChanged__Output as RoleChanged,
  ChatDeleted__Output as ChatDeleted,
  GroupEpochPublished__Output as GroupEpochPublished,
  EpochKeysAdded__Output as EpochKeysAdded,
  EpochRotationRequired__Output as EpochRotationRequired,
  MessagePosted__Output as MessagePosted,
  MessagesRead__Output as MessagesRead,
  MessageDeleted__Output as MessageDeleted,
  DisappearingTimerSet__Output as DisappearingTimerSet,
  MemberEntry__Output as MemberEntry,
  WrappedKey__Output as WrappedKey,
  UserRegistered__Output as UserRegistered,
  IdentityKeySet__Output as IdentityKeySet,
  ProfileUpdated__Output as ProfileUpdated,
  PasswordChanged__Output as PasswordChanged,
  DeviceListPublished__Output as DeviceListPublished,
  UserDeleted__Output as UserDeleted,
  DeviceRegistered__Output as DeviceRegistered,
  DeviceRevoked__Output as DeviceRevoked,
  DigestReady__Output as DigestReady,
  DigestFailed__Output as DigestFailed,
  DigestPolicyChanged__Output as DigestPolicyChanged,
  DigestConsentChanged__Output as DigestConsentChanged,
  DigestKeyRotated__Output as DigestKeyRotated,
};

/** How one field is read: its proto3 JSON form. */
type Kind<T> = [T] extends [boolean]
  ? 'bool'
  : [T] extends [number]
    ? 'int32'
    : [T] extends [readonly (infer E)[]]
      ? [E] extends [string]
        ? 'strings'
        : Message<E>
      : [T] extends [string]
        ? string extends T
          ? 'string' | 'int64'
          : EnumKind<T>
        : never;

/** An enum field: the names it may take (the generated const object's values). */
interface EnumKind<T extends string> {
  readonly enum: readonly T[];
}

/** A repeated message field, or a message's field list. */
interface Message<T> {
  readonly fields: Fields<T>;
}

/** Every field of T with how to read it. */
export type Fields<T> = { readonly [K in keyof T]-?: Kind<T[K]> };

const enumOf = <T extends string>(values: Record<string, T>): EnumKind<T> => ({ enum: Object.values(values) });
const message = <T>(fields: Fields<T>): Message<T> => ({ fields });

/** A payload that does not match its event's message. */
export class EventPayloadError extends Error {
  constructor(
    readonly event: string,
    readonly field: string,
    why: string,
  ) {
    super(`${event}: ${field} ${why}`);
    this.name = 'EventPayloadError';
  }
}

function readField(kind: unknown, raw: unknown, event: string, field: string): unknown {
  const bad = (why: string) => new EventPayloadError(event, field, why);
  if (kind === 'string') {
    if (raw === undefined || raw === null) return '';
    if (typeof raw !== 'string') throw bad('is not a string');
    return raw;
  }
  if (kind === 'int64') {
    if (raw === undefined || raw === null) return '0';
    if (typeof raw === 'number' && Number.isSafeInteger(raw)) return String(raw);
    if (typeof raw !== 'string' || !/^-?\d{1,19}$/.test(raw)) throw bad('is not a 64-bit integer');
    return raw;
  }
  if (kind === 'int32') {
    if (raw === undefined || raw === null) return 0;
    const n = typeof raw === 'string' && /^-?\d{1,10}$/.test(raw) ? Number(raw) : raw;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < -(2 ** 31) || n >= 2 ** 31) throw bad('is not a 32-bit integer');
    return n;
  }
  if (kind === 'bool') {
    if (raw === undefined || raw === null) return false;
    if (typeof raw !== 'boolean') throw bad('is not a boolean');
    return raw;
  }
  if (kind === 'strings') {
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw) || !raw.every((s) => typeof s === 'string')) throw bad('is not a list of strings');
    return raw;
  }
  if (typeof kind === 'object' && kind !== null && 'enum' in kind) {
    const names = (kind as EnumKind<string>).enum;
    if (raw === undefined || raw === null) return names[0];
    if (typeof raw !== 'string' || !names.includes(raw)) throw bad(`is not one of ${names.join(', ')}`);
    return raw;
  }
  if (typeof kind === 'object' && kind !== null && 'fields' in kind) {
    if (raw === undefined || raw === null) return [];
    if (!Array.isArray(raw)) throw bad('is not a list');
    return raw.map((item, i) => readMessage((kind as Message<unknown>).fields, item, event, `${field}.${i}.`));
  }
  throw bad('has no known kind');
}

function readMessage(fields: object, raw: unknown, event: string, path = ''): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new EventPayloadError(event, path || 'payload', 'is not an object');
  const out: Record<string, unknown> = {};
  for (const [name, kind] of Object.entries(fields)) out[name] = readField(kind, Reflect.get(raw, name), event, path + name);
  return out;
}

const memberEntry = message<MemberEntry__Output>({ userId: 'string', role: enumOf(MemberRole) });
const wrappedKey = message<WrappedKey__Output>({ deviceId: 'string', wrappedKey: 'string' });

/** identity.v1.<name>: what identity publishes (proto/bil/identity/v1/events.proto). */
export const identityEvents = {
  'user.registered': message<UserRegistered__Output>({ userId: 'string', username: 'string', displayName: 'string', occurredAt: 'string' }),
  'user.identity_key_set': message<IdentityKeySet__Output>({ userId: 'string', identityKey: 'string', reset: 'bool', occurredAt: 'string' }),
  'user.profile_updated': message<ProfileUpdated__Output>({ userId: 'string', displayName: 'string', occurredAt: 'string' }),
  'user.password_changed': message<PasswordChanged__Output>({ userId: 'string', occurredAt: 'string' }),
  'user.device_list_published': message<DeviceListPublished__Output>({ userId: 'string', version: 'int64', deviceCount: 'int32', occurredAt: 'string' }),
  'user.deleted': message<UserDeleted__Output>({ userId: 'string', occurredAt: 'string' }),
  'device.registered': message<DeviceRegistered__Output>({
    deviceId: 'string',
    userId: 'string',
    name: 'string',
    encryptionKey: 'string',
    signingKey: 'string',
    certificate: 'string',
    certificateIssuedAt: 'int64',
    occurredAt: 'string',
  }),
  'device.revoked': message<DeviceRevoked__Output>({ deviceId: 'string', userId: 'string', reason: enumOf(DeviceRevocationReason), occurredAt: 'string' }),
};

/** chat.v1.<name>: what chat publishes (proto/bil/chat/v1/events.proto). */
export const chatEvents = {
  'chat.created': message<ChatCreated__Output>({
    chatId: 'string',
    type: enumOf(ChatType),
    title: 'string',
    createdBy: 'string',
    members: memberEntry,
    epoch: 'int64',
    occurredAt: 'string',
  }),
  'chat.member_added': message<MemberAdded__Output>({
    chatId: 'string',
    userId: 'string',
    role: enumOf(MemberRole),
    addedBy: 'string',
    joinedSeq: 'int64',
    occurredAt: 'string',
  }),
  'chat.member_removed': message<MemberRemoved__Output>({
    chatId: 'string',
    userId: 'string',
    removedBy: 'string',
    reason: enumOf(MemberRemovalReason),
    leftSeq: 'int64',
    occurredAt: 'string',
  }),
  'chat.role_changed': message<RoleChanged__Output>({ chatId: 'string', userId: 'string', role: enumOf(MemberRole), changedBy: 'string', occurredAt: 'string' }),
  'chat.deleted': message<ChatDeleted__Output>({ chatId: 'string', deletedBy: 'string', memberUserIds: 'strings', occurredAt: 'string' }),
  'chat.epoch_published': message<GroupEpochPublished__Output>({
    chatId: 'string',
    epoch: 'int64',
    recordHash: 'string',
    signerUserId: 'string',
    signerDeviceId: 'string',
    deviceIds: 'strings',
    occurredAt: 'string',
  }),
  'chat.epoch_keys_added': message<EpochKeysAdded__Output>({ chatId: 'string', epoch: 'int64', deviceIds: 'strings', addedBy: 'string', occurredAt: 'string' }),
  'chat.epoch_rotation_required': message<EpochRotationRequired__Output>({
    chatId: 'string',
    epoch: 'int64',
    reason: enumOf(EpochRotationReason),
    userId: 'string',
    deviceId: 'string',
    occurredAt: 'string',
  }),
  'message.posted': message<MessagePosted__Output>({
    chatId: 'string',
    chatType: enumOf(ChatType),
    seq: 'int64',
    messageId: 'string',
    senderUserId: 'string',
    senderDeviceId: 'string',
    epoch: 'int64',
    envelope: 'string',
    wrappedKeys: wrappedKey,
    occurredAt: 'string',
    expiresAt: 'string',
  }),
  'message.deleted': message<MessageDeleted__Output>({
    chatId: 'string',
    seq: 'int64',
    messageId: 'string',
    senderUserId: 'string',
    tombstone: 'string',
    occurredAt: 'string',
  }),
  'chat.disappearing_timer_set': message<DisappearingTimerSet__Output>({ chatId: 'string', disappearingMs: 'int64', setBy: 'string', occurredAt: 'string' }),
  'message.read': message<MessagesRead__Output>({ chatId: 'string', userId: 'string', lastReadSeq: 'int64', occurredAt: 'string' }),
};

/** digest.v1.<name>: what digest publishes (proto/bil/digest/v1/events.proto). */
export const digestEvents = {
  'digest.ready': message<DigestReady__Output>({
    requestId: 'string',
    userId: 'string',
    deviceId: 'string',
    chatIds: 'strings',
    method: 'string',
    expiresAt: 'string',
    occurredAt: 'string',
  }),
  'digest.failed': message<DigestFailed__Output>({ requestId: 'string', userId: 'string', deviceId: 'string', reason: enumOf(DigestFailureReason), occurredAt: 'string' }),
  'policy.changed': message<DigestPolicyChanged__Output>({ chatId: 'string', userId: 'string', enabled: 'bool', disabledByCount: 'int32', occurredAt: 'string' }),
  'consent.changed': message<DigestConsentChanged__Output>({
    chatId: 'string',
    userId: 'string',
    deviceId: 'string',
    include: 'bool',
    version: 'int64',
    consent: 'string',
    occurredAt: 'string',
  }),
  'key.rotated': message<DigestKeyRotated__Output>({ keyId: 'string', previousKeyId: 'string', expiresAt: 'int64', occurredAt: 'string' }),
};

type Catalog = Record<string, { readonly fields: object }>;
type PayloadOf<M> = M extends Message<infer T> ? T : never;

/** The payload type of each event of a catalog, by name. */
export type Payloads<C> = { [N in keyof C]: PayloadOf<C[N]> };
export type IdentityEventPayloads = Payloads<typeof identityEvents>;
export type ChatEventPayloads = Payloads<typeof chatEvents>;
export type DigestEventPayloads = Payloads<typeof digestEvents>;

/** One decoded event: its name and its typed payload (a union narrowed by `name`). */
export type DecodedEvent<C> = { [N in keyof C]: { name: N; payload: PayloadOf<C[N]> } }[keyof C];

/**
 * Decodes an event received on `<context>.v1.<name>` (the subject without any
 * prefix): the typed payload of a known event, validated; null for an event
 * of the context this catalog does not list (a newer producer). Throws
 * EventPayloadError on a payload that does not match its message.
 */
export function decodeEvent<C extends Catalog>(catalog: C, context: string, subject: string, payload: unknown): DecodedEvent<C> | null {
  const head = `${context}.v1.`;
  if (!subject.startsWith(head)) return null;
  const name = subject.slice(head.length);
  if (!Object.hasOwn(catalog, name)) return null;
  // The one cast of the module: `name` is a key of C and its payload was read field by field from C[name]'s
  // field list, which Fields<T> ties to the generated type T.
  return { name, payload: readMessage(catalog[name]!.fields, payload, subject) } as DecodedEvent<C>;
}

/** Decodes an identity.v1.* event (see decodeEvent). */
export const decodeIdentityEvent = (subject: string, payload: unknown) => decodeEvent(identityEvents, 'identity', subject, payload);

/** Decodes a chat.v1.* event (see decodeEvent). */
export const decodeChatEvent = (subject: string, payload: unknown) => decodeEvent(chatEvents, 'chat', subject, payload);

/** Decodes a digest.v1.* event (see decodeEvent). */
export const decodeDigestEvent = (subject: string, payload: unknown) => decodeEvent(digestEvents, 'digest', subject, payload);

/** An event ready to publish: its name in the catalog and its typed payload. */
export type IdentityEventOut = DecodedEvent<typeof identityEvents>;
export type ChatEventOut = DecodedEvent<typeof chatEvents>;
export type DigestEventOut = DecodedEvent<typeof digestEvents>;

/** An event to publish: its subject (`<prefix><context>.v1.<name>`) and its payload, typed by the catalog. */
export interface EncodedEvent {
  subject: string;
  payload: object;
}

/** Encodes an identity.v1.* event: the payload must be the generated type of its message. */
export function identityEvent<N extends keyof IdentityEventPayloads>(prefix: string, name: N, payload: IdentityEventPayloads[N]): EncodedEvent {
  return { subject: `${prefix}identity.v1.${name}`, payload };
}

/** Encodes a chat.v1.* event: the payload must be the generated type of its message. */
export function chatEvent<N extends keyof ChatEventPayloads>(prefix: string, name: N, payload: ChatEventPayloads[N]): EncodedEvent {
  return { subject: `${prefix}chat.v1.${name}`, payload };
}

/** Encodes a digest.v1.* event: the payload must be the generated type of its message. */
export function digestEvent<N extends keyof DigestEventPayloads>(prefix: string, name: N, payload: DigestEventPayloads[N]): EncodedEvent {
  return { subject: `${prefix}digest.v1.${name}`, payload };
}

// Hints: plain NATS messages, never stored (their subjects are outside every
// context's stream, `<context>.v1.>`). A node that misses one falls back to
// what it would have done without it (for push subscriptions: its cache's
// time limit), so nothing may depend on receiving them.

/** Identity's hint that a user's push subscriptions changed (a device set or removed its own). */
export interface PushSubscriptionsChanged {
  userId: string;
}

/** `<prefix>identity.hint.push_subscriptions_changed`: delivery forgets what it remembers of the user's subscriptions. */
export function pushSubscriptionsChangedSubject(prefix: string): string {
  return `${prefix}identity.hint.push_subscriptions_changed`;
}

/** The hint's user id, or undefined for anything that is not one. */
export function decodePushSubscriptionsChanged(payload: unknown): PushSubscriptionsChanged | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined;
  const { userId } = payload as { userId?: unknown };
  return typeof userId === 'string' && userId.length > 0 && userId.length <= 64 ? { userId } : undefined;
}
