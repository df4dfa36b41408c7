// The JSON shapes of the public REST API (docs/api.md "Objects"), exactly as
// the gateway sends them, and their mapping to the SDK's camelCase types.

import type { DeviceJson, DirectoryJson as SchemaDirectoryJson, TokensJson, UserJson } from '@bil/proto/rest';

// The JSON of users, devices and tokens is derived from the gateway's schemas (@bil/proto/rest, types only:
// nothing of it is bundled).
export type { DeviceJson, TokensJson, UserJson };

/**
 * A key directory entry as the schema describes it, except its signed device list: untrusted input (absent from
 * older servers), which the SDK verifies before use.
 */
export type DirectoryJson = Omit<SchemaDirectoryJson, 'device_list'> & { device_list?: unknown };

/** A user as the API describes one. */
export interface User {
  readonly userId: string;
  readonly username: string;
  /** Empty when unset. */
  readonly displayName: string;
  /** Account identity key (Ed25519, base64url) as the server reports it; empty before the first device. */
  readonly identityKey: string;
  /** RFC 3339; empty if never set. */
  readonly identityKeyChangedAt: string;
  readonly createdAt: string;
}

/** A device as the API lists one (unverified: see `contacts.devices`). */
export interface Device {
  readonly deviceId: string;
  readonly userId: string;
  readonly name: string;
  readonly encryptionKey: string;
  readonly signingKey: string;
  readonly certificate: string;
  readonly certificateIssuedAt: number;
  readonly createdAt: string;
}

export function toUser(u: UserJson): User {
  return {
    userId: u.user_id,
    username: u.username,
    displayName: u.display_name,
    identityKey: u.identity_key,
    identityKeyChangedAt: u.identity_key_changed_at,
    createdAt: u.created_at,
  };
}

export function toDevice(d: DeviceJson): Device {
  return {
    deviceId: d.device_id,
    userId: d.user_id,
    name: d.name,
    encryptionKey: d.encryption_key,
    signingKey: d.signing_key,
    certificate: d.certificate,
    certificateIssuedAt: d.certificate_issued_at,
    createdAt: d.created_at,
  };
}

// ---- chats (docs/api.md "Chats") -----------------------------------------------

import type { ChatTimer } from './chat/timer.js';

import type {
  ChatJson,
  ChatTypeJson,
  EpochJson as SchemaEpochJson,
  EpochsPageJson as SchemaEpochsPageJson,
  MemberJson,
  MessageJson as SchemaMessageJson,
  MessagesPageJson as SchemaMessagesPageJson,
  RoleJson,
  UnreadChatJson,
  UnreadJson as SchemaUnreadJson,
  WrappedKeyJson,
} from '@bil/proto/rest-chat';

// The chat objects' JSON is derived from the gateway's schemas too (@bil/proto/rest-chat, types only).
export type { ChatJson, MemberJson, WrappedKeyJson };
/**
 * A message as the schema describes it, except its envelope: the SDK takes that as untrusted input (a live
 * frame may carry anything), which decrypt verifies before use.
 */
export type MessageJson = Omit<SchemaMessageJson, 'envelope'> & { envelope: unknown };
export type ChatType = ChatTypeJson;
export type ChatRole = RoleJson;

export type MessagesPageJson = Omit<SchemaMessagesPageJson, 'messages'> & { messages: MessageJson[] };

/** An epoch as the schema describes it, except its record: untrusted input, which the SDK verifies (the chain) before use. */
export type EpochJson = Omit<SchemaEpochJson, 'record'> & { record: unknown };
export type EpochsPageJson = Omit<SchemaEpochsPageJson, 'epochs'> & { epochs: EpochJson[] };
/** The unread summary as the schema describes it, its newest unread messages as the SDK reads messages (see MessageJson). */
export type UnreadJson = Omit<SchemaUnreadJson, 'chats'> & { chats: (Omit<UnreadChatJson, 'newest_unread'> & { newest_unread: MessageJson[] })[] };

/** A member of a chat. */
export interface ChatMember {
  readonly userId: string;
  readonly role: ChatRole;
  /** RFC 3339. */
  readonly joinedAt: string;
  /** The chat's last seq when they joined; they see later messages only. */
  readonly joinedSeq: number;
}

/** A chat as the caller sees it (from the server; membership of groups is also in the verified epoch chain). */
export interface Chat {
  readonly chatId: string;
  readonly type: ChatType;
  /** Empty for personal chats. */
  readonly title: string;
  readonly createdBy: string;
  readonly createdAt: string;
  readonly lastSeq: number;
  readonly lastActivityAt: string;
  /** Current group epoch; 0 for personal chats. */
  readonly epoch: number;
  readonly epochRotationRequired: boolean;
  readonly myRole: ChatRole;
  readonly memberCount: number;
  readonly lastReadSeq: number;
  readonly unreadCount: number;
  /** The other user of a personal chat; empty for groups. */
  readonly peerUserId: string;
  /**
   * Filled by `get` and membership calls; empty in `list`. For groups, the
   * members and roles of the verified head record (owner and join times from
   * the server where it agrees), not the server's list.
   */
  readonly members: ChatMember[];
  /** Groups (`get`): the head record's members as verified, with their identity keys and devices. */
  readonly verifiedMembers?: readonly VerifiedMember[];
  /** Groups (`get`): how the server's member list differs from the verified record; null when it doesn't. */
  readonly memberListMismatch?: MemberListMismatch | null;
  /** Groups: the title came from the verified record (false: a version 1 group's title as the server stores it, or none loaded). */
  readonly titleVerified?: boolean;
  /** The disappearing-message timer as this device verified it (`get` and `setTimer`; docs/sdk.md "Disappearing messages"). */
  readonly timer?: ChatTimer;
}

/** A member as the verified epoch record lists them. */
export interface VerifiedMember {
  readonly userId: string;
  readonly role: 'admin' | 'member';
  readonly identityKey: string;
  readonly deviceIds: readonly string[];
}

/** Where the server's member list and the verified record disagree (show it: the server may be hiding or adding someone). */
export interface MemberListMismatch {
  /** Listed by the server, not by the record (they can't read: nothing is encrypted to them). */
  readonly extraOnServer: readonly string[];
  /** In the record, not listed by the server (they still hold the epoch key). */
  readonly missingOnServer: readonly string[];
  /** Admin in one, member in the other. */
  readonly roleDiffers: readonly string[];
}

export interface UnreadSummary {
  readonly total: number;
  readonly chats: {
    readonly chatId: string;
    readonly type: ChatType;
    readonly unreadCount: number;
    readonly firstUnreadSeq: number;
    readonly lastSeq: number;
    readonly lastActivityAt: string;
  }[];
}

export function toChat(c: ChatJson): Chat {
  return {
    chatId: c.chat_id,
    type: c.type,
    title: c.title,
    createdBy: c.created_by,
    createdAt: c.created_at,
    lastSeq: c.last_seq,
    lastActivityAt: c.last_activity_at,
    epoch: c.epoch,
    epochRotationRequired: c.epoch_rotation_required,
    myRole: c.my_role,
    memberCount: c.member_count,
    lastReadSeq: c.last_read_seq,
    unreadCount: c.unread_count,
    peerUserId: c.peer_user_id,
    members: c.members.map(toMember),
  };
}

export function toMember(m: MemberJson): ChatMember {
  return { userId: m.user_id, role: m.role, joinedAt: m.joined_at, joinedSeq: m.joined_seq };
}
