// What chat publishes: the public contract in proto/bil/chat/v1/events.proto
// (proto3 JSON mapping: lowerCamelCase, enums by name, 64-bit integers as
// strings). Message events carry the envelope (ciphertext) and the wrapped
// keys so that delivery pushes them without calling back; epoch events carry
// no records or keys (a 1,000-member record is megabytes; clients fetch it).
// Each payload is the generated type of its message (`@bil/proto/events`).
import { chatEvent, type ChatCreated, type EpochRotationRequired, type MemberEntry, type MemberRemoved } from '@bil/proto/events';
import type { OutboundMessage, StoredEvent } from '@bil/runtime';
import type { ChatEvent, ChatType, RemovalReason, Role, RotationReason } from '../domain/chat/chat.js';
import type { ReadsEvent } from '../domain/reads/reads.js';

export const CHAT_TYPES: Record<ChatType, ChatCreated['type']> = { personal: 'CHAT_TYPE_PERSONAL', group: 'CHAT_TYPE_GROUP' };
export const ROLES: Record<Role, MemberEntry['role']> = { owner: 'MEMBER_ROLE_OWNER', admin: 'MEMBER_ROLE_ADMIN', member: 'MEMBER_ROLE_MEMBER' };
const REMOVALS: Record<RemovalReason, MemberRemoved['reason']> = {
  removed: 'MEMBER_REMOVAL_REASON_REMOVED',
  left: 'MEMBER_REMOVAL_REASON_LEFT',
  account_deleted: 'MEMBER_REMOVAL_REASON_ACCOUNT_DELETED',
};
const ROTATIONS: Record<RotationReason, EpochRotationRequired['reason']> = {
  member_removed: 'EPOCH_ROTATION_REASON_MEMBER_REMOVED',
  member_left: 'EPOCH_ROTATION_REASON_MEMBER_LEFT',
  device_revoked: 'EPOCH_ROTATION_REASON_DEVICE_REVOKED',
  account_deleted: 'EPOCH_ROTATION_REASON_ACCOUNT_DELETED',
};

export function chatIntegrationEvent(prefix: string, stored: StoredEvent): OutboundMessage | null {
  const e = { type: stored.type, data: stored.data } as ChatEvent | ReadsEvent;
  switch (e.type) {
    case 'ChatCreated': {
      const d = e.data;
      return chatEvent(prefix, 'chat.created', {
          chatId: d.chatId,
          type: CHAT_TYPES[d.chatType],
          title: d.title,
          createdBy: d.createdBy,
          members: d.members.map((m) => ({ userId: m.userId, role: ROLES[m.role] })),
          epoch: d.chatType === 'group' ? '1' : '0',
          occurredAt: d.occurredAt,
      });
    }
    case 'MemberAdded': {
      const d = e.data;
      return chatEvent(prefix, 'chat.member_added', {
        chatId: d.chatId,
        userId: d.userId,
        role: ROLES[d.role],
        addedBy: d.addedBy,
        joinedSeq: String(d.joinedSeq),
        occurredAt: d.occurredAt,
      });
    }
    case 'MemberRemoved': {
      // The signed leave stays out of the bus: clients fetch it with GetChat (pending_leaves).
      const d = e.data;
      return chatEvent(prefix, 'chat.member_removed', {
          chatId: d.chatId,
          userId: d.userId,
          removedBy: d.removedBy,
          reason: REMOVALS[d.reason],
          leftSeq: String(d.leftSeq),
          occurredAt: d.occurredAt,
      });
    }
    case 'RoleChanged': {
      const d = e.data;
      return chatEvent(prefix, 'chat.role_changed', { chatId: d.chatId, userId: d.userId, role: ROLES[d.role], changedBy: d.changedBy, occurredAt: d.occurredAt });
    }
    case 'ChatDeleted': {
      const d = e.data;
      return chatEvent(prefix, 'chat.deleted', { chatId: d.chatId, deletedBy: d.deletedBy, memberUserIds: d.memberUserIds, occurredAt: d.occurredAt });
    }
    case 'GroupEpochPublished': {
      const d = e.data;
      return chatEvent(prefix, 'chat.epoch_published', {
          chatId: d.chatId,
          epoch: String(d.epoch),
          recordHash: d.recordHash,
          signerUserId: d.signerUserId,
          signerDeviceId: d.signerDeviceId,
          deviceIds: d.keys.map((k) => k.deviceId),
          occurredAt: d.occurredAt,
      });
    }
    case 'EpochKeysAdded': {
      const d = e.data;
      return chatEvent(prefix, 'chat.epoch_keys_added', { chatId: d.chatId, epoch: String(d.epoch), deviceIds: d.keys.map((k) => k.deviceId), addedBy: d.addedBy, occurredAt: d.occurredAt });
    }
    case 'LegacyTitleCleared':
      return null; // read-model housekeeping: chat.v1.chat.epoch_published of the same epoch already tells members
    case 'EpochRotationRequired': {
      const d = e.data;
      return chatEvent(prefix, 'chat.epoch_rotation_required', {
        chatId: d.chatId,
        epoch: String(d.epoch),
        reason: ROTATIONS[d.reason],
        userId: d.userId,
        deviceId: d.deviceId,
        occurredAt: d.occurredAt,
      });
    }
    case 'MessagePosted': {
      const d = e.data;
      return chatEvent(prefix, 'message.posted', {
          chatId: d.chatId,
          chatType: CHAT_TYPES[d.chatType],
          seq: String(d.seq),
          messageId: d.messageId,
          senderUserId: d.senderUserId,
          senderDeviceId: d.senderDeviceId,
          epoch: String(d.epoch),
          // Erased before the relay got to it (deleted or expired at once): nothing to carry.
          envelope: d.envelope ? JSON.stringify(d.envelope) : '',
          wrappedKeys: (d.wrappedKeys ?? []).map((k) => ({ deviceId: k.deviceId, wrappedKey: k.wrappedKey })),
          occurredAt: d.occurredAt,
          expiresAt: d.expiresAt ?? '',
      });
    }
    case 'MessageDeleted': {
      const d = e.data;
      return chatEvent(prefix, 'message.deleted', {
        chatId: d.chatId,
        seq: String(d.seq),
        messageId: d.messageId,
        senderUserId: d.senderUserId,
        tombstone: JSON.stringify(d.tombstone),
        occurredAt: d.occurredAt,
      });
    }
    case 'DisappearingTimerSet': {
      const d = e.data;
      return chatEvent(prefix, 'chat.disappearing_timer_set', { chatId: d.chatId, disappearingMs: String(d.disappearingMs), setBy: d.setBy, occurredAt: d.occurredAt });
    }
    case 'MessagesRead': {
      const d = e.data;
      return chatEvent(prefix, 'message.read', { chatId: d.chatId, userId: d.userId, lastReadSeq: String(d.lastReadSeq), occurredAt: d.occurredAt });
    }
    default: {
      const unknown: never = e;
      return unknown;
    }
  }
}
