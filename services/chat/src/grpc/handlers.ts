// gRPC surface of the chat service: maps proto messages to the application
// layer and back. Validation lives in the app/domain layers.
import { invalidArgument, unauthenticated, type AsyncHandlers } from '@bil/runtime';
import type { ChatServiceHandlers } from '@bil/proto/gen/bil/chat/v1/ChatService';
import type { Actor__Output } from '@bil/proto/gen/bil/chat/v1/Actor';
import type { Chat } from '@bil/proto/gen/bil/chat/v1/Chat';
import type { Member } from '@bil/proto/gen/bil/chat/v1/Member';
import type { MemberSpec__Output } from '@bil/proto/gen/bil/chat/v1/MemberSpec';
import type { WrappedKey__Output } from '@bil/proto/gen/bil/chat/v1/WrappedKey';
import type { Actor, ChatApp, ChatView, MemberInput, MemberView } from '../app/chat-app.js';
import type { ChatType, Role } from '../domain/chat/chat.js';
import { isUuid } from '../domain/validation.js';
import { CHAT_TYPES, ROLES } from '../infra/integration-events.js';

const ROLE_OF: Record<string, Role | undefined> = { MEMBER_ROLE_OWNER: 'owner', MEMBER_ROLE_ADMIN: 'admin', MEMBER_ROLE_MEMBER: 'member' };
const TYPE_OF: Record<string, ChatType | undefined> = { CHAT_TYPE_PERSONAL: 'personal', CHAT_TYPE_GROUP: 'group' };

export function actorOf(a: Actor__Output | null): Actor {
  if (!a || !isUuid(a.userId) || !isUuid(a.deviceId) || !a.sessionId) throw unauthenticated('missing_actor', 'the request has no signed-in actor');
  return { userId: a.userId, deviceId: a.deviceId, sessionId: a.sessionId };
}

/** MEMBER_ROLE_UNSPECIFIED means "not given"; anything unknown is refused. */
function roleOf(raw: string | number | undefined): Role | undefined {
  if (raw === undefined || raw === 'MEMBER_ROLE_UNSPECIFIED' || raw === 0) return undefined;
  const role = ROLE_OF[String(raw)];
  if (!role) throw invalidArgument('invalid_role', 'role must be MEMBER_ROLE_OWNER, MEMBER_ROLE_ADMIN or MEMBER_ROLE_MEMBER', { field: 'role' });
  return role;
}

function typeOf(raw: string | number | undefined): ChatType | undefined {
  if (raw === undefined || raw === 'CHAT_TYPE_UNSPECIFIED' || raw === 0) return undefined;
  const type = TYPE_OF[String(raw)];
  if (!type) throw invalidArgument('invalid_type', 'type must be CHAT_TYPE_PERSONAL or CHAT_TYPE_GROUP', { field: 'type' });
  return type;
}

const members = (specs: MemberSpec__Output[]): MemberInput[] => specs.map((m) => ({ userId: m.userId, role: roleOf(m.role) }));
const keys = (list: WrappedKey__Output[]) => list.map((k) => ({ deviceId: k.deviceId, wrappedKey: k.wrappedKey }));

const memberMsg = (m: MemberView): Member => ({ userId: m.userId, role: ROLES[m.role] as Member['role'], joinedAt: m.joinedAt, joinedSeq: String(m.joinedSeq) });

const chatMsg = (c: ChatView): Chat => ({
  chatId: c.chatId,
  type: CHAT_TYPES[c.type] as Chat['type'],
  title: c.title,
  createdBy: c.createdBy,
  createdAt: c.createdAt,
  lastSeq: String(c.lastSeq),
  lastActivityAt: c.lastActivityAt,
  epoch: String(c.epoch),
  epochRotationRequired: c.epochRotationRequired,
  myRole: ROLES[c.myRole] as Chat['myRole'],
  memberCount: c.memberCount,
  lastReadSeq: String(c.lastReadSeq),
  unreadCount: String(c.unreadCount),
  peerUserId: c.peerUserId,
  members: c.members.map(memberMsg),
  pendingLeaves: c.pendingLeaves,
  disappearingMs: String(c.disappearingMs),
  timerStatement: c.timerStatement,
});

export function chatHandlers(app: ChatApp): AsyncHandlers<ChatServiceHandlers> {
  return {
    CreatePersonalChat: async (req) => {
      const r = await app.createPersonalChat(actorOf(req.actor), req.peerUserId);
      return { chat: chatMsg(r.chat), created: r.created };
    },
    CreateGroup: async (req) => ({
      chat: chatMsg(
        await app.createGroup(actorOf(req.actor), {
          chatId: req.chatId,
          title: req.title,
          members: members(req.members),
          epochRecord: req.epochRecord,
          epochKeys: keys(req.epochKeys),
        }),
      ),
    }),
    GetChat: async (req) => ({ chat: chatMsg(await app.getChat(actorOf(req.actor), req.chatId)) }),
    ListChats: async (req) => {
      const r = await app.listChats(actorOf(req.actor), { type: typeOf(req.type), limit: req.limit, pageToken: req.pageToken });
      return { chats: r.chats.map(chatMsg), nextPageToken: r.nextPageToken };
    },
    AddMembers: async (req) => ({
      chat: chatMsg(
        await app.addMembers(actorOf(req.actor), {
          chatId: req.chatId,
          members: members(req.members),
          epochRecord: req.epochRecord,
          epochKeys: keys(req.epochKeys),
        }),
      ),
    }),
    RemoveMember: async (req) => {
      const r = await app.removeMember(actorOf(req.actor), {
        chatId: req.chatId,
        userId: req.userId,
        epochRecord: req.epochRecord,
        epochKeys: keys(req.epochKeys),
        leave: req.leave,
      });
      return { chatId: r.chatId, epoch: String(r.epoch), epochRotationRequired: r.epochRotationRequired };
    },
    ChangeRole: async (req) => {
      const role = roleOf(req.role);
      if (!role) throw invalidArgument('invalid_role', 'role is required', { field: 'role' });
      return { member: memberMsg(await app.changeRole(actorOf(req.actor), { chatId: req.chatId, userId: req.userId, role })) };
    },
    DeleteChat: async (req) => {
      await app.deleteChat(actorOf(req.actor), req.chatId);
      return {};
    },
    PublishEpoch: async (req) => {
      const r = await app.publishEpoch(actorOf(req.actor), { chatId: req.chatId, epochRecord: req.epochRecord, epochKeys: keys(req.epochKeys) });
      return { epoch: String(r.epoch), recordHash: r.recordHash };
    },
    AddEpochKeys: async (req) => ({
      added: await app.addEpochKeys(actorOf(req.actor), { chatId: req.chatId, epoch: req.epoch, epochKeys: keys(req.epochKeys) }),
    }),
    ListEpochs: async (req) => {
      const r = await app.listEpochs(actorOf(req.actor), { chatId: req.chatId, afterEpoch: req.afterEpoch, limit: req.limit });
      return {
        epochs: r.epochs.map((e) => ({ ...e, epoch: String(e.epoch) })),
        currentEpoch: String(r.currentEpoch),
        hasMore: r.hasMore,
      };
    },
    SendMessage: async (req) => {
      const r = await app.sendMessage(actorOf(req.actor), {
        chatId: req.chatId,
        messageId: req.messageId,
        envelope: req.envelope,
        wrappedKeys: keys(req.wrappedKeys),
        attachmentIds: req.attachmentIds,
      });
      return { seq: String(r.seq), createdAt: r.createdAt, duplicate: r.duplicate };
    },
    ListMessages: async (req) => {
      const r = await app.listMessages(actorOf(req.actor), {
        chatId: req.chatId,
        afterSeq: req.cursor === 'afterSeq' ? req.afterSeq : undefined,
        beforeSeq: req.cursor === 'beforeSeq' ? req.beforeSeq : undefined,
        limit: req.limit,
      });
      return {
        messages: r.messages.map((m) => ({ ...m, seq: String(m.seq), epoch: String(m.epoch) })),
        hasMore: r.hasMore,
        lastSeq: String(r.lastSeq),
      };
    },
    CatchUpMessages: async (req) => {
      const r = await app.catchUpMessages({ chatId: req.chatId, devices: req.devices, limit: req.limit });
      return {
        messages: r.messages.map(({ message: m, recipients }) => ({ message: { ...m, seq: String(m.seq), epoch: String(m.epoch) }, recipients })),
        hasMore: r.hasMore,
        throughSeq: String(r.throughSeq),
        lastSeq: String(r.lastSeq),
      };
    },
    MarkRead: async (req) => {
      const r = await app.markRead(actorOf(req.actor), req.chatId, req.seq);
      return { lastReadSeq: String(r.lastReadSeq), unreadCount: String(r.unreadCount) };
    },
    GetUnread: async (req) => {
      const r = await app.getUnread(actorOf(req.actor), { limit: req.limit, maxEnvelopesPerChat: req.maxEnvelopesPerChat, pageToken: req.pageToken });
      return {
        totalUnread: String(r.totalUnread),
        unreadChats: r.unreadChats,
        nextPageToken: r.nextPageToken,
        chats: r.chats.map((c) => ({
          chatId: c.chatId,
          type: CHAT_TYPES[c.type] as Chat['type'],
          title: c.title,
          unreadCount: String(c.unreadCount),
          firstUnreadSeq: String(c.firstUnreadSeq),
          lastSeq: String(c.lastSeq),
          lastActivityAt: c.lastActivityAt,
          newestUnread: c.newestUnread.map((m) => ({ ...m, seq: String(m.seq), epoch: String(m.epoch) })),
        })),
      };
    },
    DeleteMessage: async (req) => {
      const r = await app.deleteMessage(actorOf(req.actor), { chatId: req.chatId, messageId: req.messageId, tombstone: req.tombstone });
      return { seq: String(r.seq), deleted: r.deleted };
    },
    SetDisappearingTimer: async (req) => ({
      chat: chatMsg(await app.setDisappearingTimer(actorOf(req.actor), { chatId: req.chatId, disappearingMs: req.disappearingMs, timerStatement: req.timerStatement })),
    }),
  };
}
