// Maps the chat service's gRPC messages (camelCase, enums as their proto
// names, 64-bit integers as strings, envelopes and records as JSON text) to
// the public JSON shapes (snake_case, short enum names, numbers, objects) and back.
import { AppError } from '@bil/runtime';
import { int64ToNumber } from './mappers.js';
import type { Chat, EpochRecord, Member, Message, UnreadChat } from './chat-client.js';
import type { EnvelopeJson, EpochJson, EpochRecordJson, MemberJson, MessageJson, SignedTimerJson, SignedTombstoneJson, UnreadChatJson } from '@bil/proto/rest-chat';
import type { ChatTypeJson, RoleJson, WrappedKeyJson } from './chat-schemas.js';

type ProtoRole = 'MEMBER_ROLE_UNSPECIFIED' | 'MEMBER_ROLE_OWNER' | 'MEMBER_ROLE_ADMIN' | 'MEMBER_ROLE_MEMBER';
type ProtoChatType = 'CHAT_TYPE_UNSPECIFIED' | 'CHAT_TYPE_PERSONAL' | 'CHAT_TYPE_GROUP';

const ROLE_TO_PROTO: Record<RoleJson, ProtoRole> = {
  owner: 'MEMBER_ROLE_OWNER',
  admin: 'MEMBER_ROLE_ADMIN',
  member: 'MEMBER_ROLE_MEMBER',
};

export function roleToProto(role: RoleJson | undefined): ProtoRole {
  return role ? ROLE_TO_PROTO[role] : 'MEMBER_ROLE_UNSPECIFIED';
}

export function roleJson(role: string | null | undefined): RoleJson {
  switch (role) {
    case 'MEMBER_ROLE_OWNER':
      return 'owner';
    case 'MEMBER_ROLE_ADMIN':
      return 'admin';
    default:
      return 'member';
  }
}

export function chatTypeToProto(type: ChatTypeJson | undefined): ProtoChatType {
  if (type === 'personal') return 'CHAT_TYPE_PERSONAL';
  if (type === 'group') return 'CHAT_TYPE_GROUP';
  return 'CHAT_TYPE_UNSPECIFIED';
}

export function chatTypeJson(type: string | null | undefined): ChatTypeJson {
  return type === 'CHAT_TYPE_GROUP' ? 'group' : 'personal';
}

/** JSON text from chat (an envelope, an epoch record or a signed leave) as an object; chat stored it, so it parses. */
export function parseStored(text: string, what: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new AppError('internal', 'internal', `chat returned a malformed ${what}`);
}

export function wrappedKeysToProto(keys: readonly WrappedKeyJson[] | undefined): { deviceId: string; wrappedKey: string }[] {
  return (keys ?? []).map((k) => ({ deviceId: k.device_id, wrappedKey: k.wrapped_key }));
}

export function memberJson(m: Member | null | undefined): MemberJson {
  return {
    user_id: m?.userId ?? '',
    role: roleJson(m?.role),
    joined_at: m?.joinedAt ?? '',
    joined_seq: int64ToNumber(m?.joinedSeq),
  };
}

export function chatJson(c: Chat | null | undefined) {
  if (!c) throw new AppError('internal', 'internal', 'chat returned no chat');
  return {
    chat_id: c.chatId,
    type: chatTypeJson(c.type),
    title: c.title,
    created_by: c.createdBy,
    created_at: c.createdAt,
    last_seq: int64ToNumber(c.lastSeq),
    last_activity_at: c.lastActivityAt,
    epoch: int64ToNumber(c.epoch),
    epoch_rotation_required: c.epochRotationRequired,
    my_role: roleJson(c.myRole),
    member_count: c.memberCount,
    last_read_seq: int64ToNumber(c.lastReadSeq),
    unread_count: int64ToNumber(c.unreadCount),
    peer_user_id: c.peerUserId,
    members: (c.members ?? []).map(memberJson),
    pending_leaves: (c.pendingLeaves ?? []).map((l) => parseStored(l, 'signed leave')),
    disappearing_ms: int64ToNumber(c.disappearingMs),
    // Chat validated it before storing it; personal chats only, once a timer was set.
    ...(c.timerStatement ? { timer_statement: parseStored(c.timerStatement, 'timer statement') as SignedTimerJson } : {}),
  };
}

export function messageJson(m: Message): MessageJson {
  return {
    chat_id: m.chatId,
    seq: int64ToNumber(m.seq),
    message_id: m.messageId,
    sender_user_id: m.senderUserId,
    sender_device_id: m.senderDeviceId,
    // Chat validated it against the schema before storing it; a removed message has none.
    ...(m.removed ? {} : { envelope: parseStored(m.envelope, 'envelope') as EnvelopeJson }),
    wrapped_key: m.wrappedKey,
    epoch: int64ToNumber(m.epoch),
    created_at: m.createdAt,
    removed: m.removed,
    ...(m.tombstone ? { tombstone: parseStored(m.tombstone, 'tombstone') as SignedTombstoneJson } : {}),
    expires_at: m.expiresAt,
  };
}

export function epochJson(e: EpochRecord): EpochJson {
  return {
    epoch: int64ToNumber(e.epoch),
    record_hash: e.recordHash,
    // Chat validated it against the schema before storing it.
    record: parseStored(e.record, 'epoch record') as EpochRecordJson,
    wrapped_key: e.wrappedKey,
    signer_user_id: e.signerUserId,
    signer_device_id: e.signerDeviceId,
    created_at: e.createdAt,
  };
}

export function unreadChatJson(u: UnreadChat): UnreadChatJson {
  return {
    chat_id: u.chatId,
    type: chatTypeJson(u.type),
    unread_count: int64ToNumber(u.unreadCount),
    title: u.title ?? '',
    first_unread_seq: int64ToNumber(u.firstUnreadSeq),
    last_seq: int64ToNumber(u.lastSeq),
    last_activity_at: u.lastActivityAt,
    newest_unread: (u.newestUnread ?? []).map(messageJson),
  };
}
