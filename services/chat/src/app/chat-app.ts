// The chat context's application layer, as the gRPC handlers and the
// identity consumer see it: a thin facade over one module per use case.
//
//   commands/   one module per command handler (create-group.ts,
//               remove-member.ts, mark-read.ts, …); each builds its command
//               on the locked chat's state and hands it to run-chat.ts
//               (lock the chat row → EventStore.handleIn, retried on a
//               concurrency conflict); the rules live in the pure deciders
//   queries/    one module per read model (chats.ts, history.ts, epochs.ts,
//               unread.ts) with its SQL and its view types
//   repository.ts  directory look-ups (users, devices, signing keys, usable
//               device checks) and the caller's access to a chat
//   send/       the send path, group-committed (message-writer.ts)
//
// Projections run in the append transaction (projections/read-models.ts);
// the outbox publishes after commit.
import {
  systemClock,
  type Clock,
  type Database,
  type EventMetadata,
  type EventStore,
  type IncomingEvent,
  type Logger,
  type StoredEvent,
  type Tx,
} from '@bil/runtime';
import { decodeIdentityEvent } from '@bil/proto/events';
import type { ChatCommand, ChatState, ChatType, Role } from '../domain/chat/chat.js';
import type { Actor, ChatDeps, ChatSettings, MemberInput } from './context.js';
import { chatsOf } from './repository.js';
import { MessageWriter, type SendResult } from './send/message-writer.js';
import { executeChat } from './commands/run-chat.js';
import { createPersonalChat } from './commands/create-personal-chat.js';
import { createGroup } from './commands/create-group.js';
import { addMembers } from './commands/add-members.js';
import { removeMember } from './commands/remove-member.js';
import { changeRole } from './commands/change-role.js';
import { deleteChat } from './commands/delete-chat.js';
import { publishEpoch } from './commands/publish-epoch.js';
import { addEpochKeys } from './commands/add-epoch-keys.js';
import { sendMessage } from './commands/send-message.js';
import { markRead } from './commands/mark-read.js';
import { deleteMessage } from './commands/delete-message.js';
import { setDisappearingTimer } from './commands/set-timer.js';
import { getChat, listChats, type ChatView, type MemberView } from './queries/chats.js';
import { listMessages, type MessageView } from './queries/history.js';
import { catchUpMessages, type CatchUpPage } from './queries/catch-up.js';
import { listEpochs, type EpochView } from './queries/epochs.js';
import { getUnread, type UnreadView } from './queries/unread.js';

export type { Actor, ChatSettings, MemberInput } from './context.js';
export type { ChatView, MemberView } from './queries/chats.js';
export type { MessageView } from './queries/history.js';
export type { EpochView } from './queries/epochs.js';
export type { UnreadView } from './queries/unread.js';
export { MAX_UNREAD_ENVELOPES } from './queries/unread.js';
export { MAX_PAGE_BYTES } from './queries/paging.js';
export type { SendResult } from './send/message-writer.js';

export class ChatApp {
  private readonly writer: MessageWriter;
  private readonly deps: ChatDeps;

  constructor(
    db: Database,
    private readonly store: EventStore,
    settings: ChatSettings,
    private readonly logger: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    this.writer = new MessageWriter(db, store, { clock });
    this.deps = { db, store, settings, clock };
  }

  // --- chats and membership --------------------------------------------------

  createPersonalChat(actor: Actor, rawPeer: unknown): Promise<{ chat: ChatView; created: boolean }> {
    return createPersonalChat(this.deps, actor, rawPeer);
  }

  createGroup(actor: Actor, input: { chatId: unknown; title?: unknown; members: MemberInput[]; epochRecord: unknown; epochKeys: unknown }): Promise<ChatView> {
    return createGroup(this.deps, actor, input);
  }

  addMembers(actor: Actor, input: { chatId: unknown; members: MemberInput[]; epochRecord: unknown; epochKeys: unknown }): Promise<ChatView> {
    return addMembers(this.deps, actor, input);
  }

  removeMember(
    actor: Actor,
    input: { chatId: unknown; userId: unknown; epochRecord: unknown; epochKeys: unknown; leave?: unknown },
  ): Promise<{ chatId: string; epoch: number; epochRotationRequired: boolean }> {
    return removeMember(this.deps, actor, input);
  }

  changeRole(actor: Actor, input: { chatId: unknown; userId: unknown; role: Role | undefined }): Promise<MemberView> {
    return changeRole(this.deps, actor, input);
  }

  deleteChat(actor: Actor, rawChatId: unknown): Promise<void> {
    return deleteChat(this.deps, actor, rawChatId);
  }

  // --- group epochs ----------------------------------------------------------

  publishEpoch(actor: Actor, input: { chatId: unknown; epochRecord: unknown; epochKeys: unknown }): Promise<{ epoch: number; recordHash: string }> {
    return publishEpoch(this.deps, actor, input);
  }

  addEpochKeys(actor: Actor, input: { chatId: unknown; epoch: unknown; epochKeys: unknown }): Promise<number> {
    return addEpochKeys(this.deps, actor, input);
  }

  listEpochs(actor: Actor, input: { chatId: unknown; afterEpoch: unknown; limit: unknown }): Promise<{ epochs: EpochView[]; currentEpoch: number; hasMore: boolean }> {
    return listEpochs(this.deps, actor, input);
  }

  // --- messages and read state -----------------------------------------------

  sendMessage(actor: Actor, input: { chatId: unknown; messageId: unknown; envelope: unknown; wrappedKeys: unknown; attachmentIds?: unknown }): Promise<SendResult> {
    return sendMessage(this.writer, actor, input, this.deps.db);
  }

  listMessages(
    actor: Actor,
    input: { chatId: unknown; afterSeq?: unknown; beforeSeq?: unknown; limit: unknown },
  ): Promise<{ messages: MessageView[]; hasMore: boolean; lastSeq: number }> {
    return listMessages(this.deps, actor, input);
  }

  /** Delivery's catch-up of many devices of one chat: one page, each message with the devices that get it. */
  catchUpMessages(input: { chatId: unknown; devices: unknown; limit: unknown }): Promise<CatchUpPage> {
    return catchUpMessages(this.deps, input);
  }

  markRead(actor: Actor, rawChatId: unknown, rawSeq: unknown): Promise<{ lastReadSeq: number; unreadCount: number }> {
    return markRead(this.deps, actor, rawChatId, rawSeq);
  }

  getUnread(
    actor: Actor,
    input: { limit: unknown; maxEnvelopesPerChat?: unknown; pageToken?: unknown },
  ): Promise<{ totalUnread: number; unreadChats: number; chats: UnreadView[]; nextPageToken: string }> {
    return getUnread(this.deps, actor, input);
  }

  // --- retention: delete for everyone, disappearing messages ----------------

  deleteMessage(actor: Actor, input: { chatId: unknown; messageId: unknown; tombstone: unknown }): Promise<{ seq: number; deleted: boolean }> {
    return deleteMessage(this.deps, actor, input);
  }

  async setDisappearingTimer(actor: Actor, input: { chatId: unknown; disappearingMs: unknown; timerStatement?: unknown }): Promise<ChatView> {
    await setDisappearingTimer(this.deps, actor, input);
    return getChat(this.deps, actor, input.chatId);
  }

  // --- queries ---------------------------------------------------------------

  getChat(actor: Actor, rawChatId: unknown): Promise<ChatView> {
    return getChat(this.deps, actor, rawChatId);
  }

  listChats(actor: Actor, input: { type: ChatType | undefined; limit: unknown; pageToken: unknown }): Promise<{ chats: ChatView[]; nextPageToken: string }> {
    return listChats(this.deps, actor, input);
  }

  // --- the identity directory (a durable consumer of identity.v1.*) ---------

  /** Applies one identity event inside the consumer's transaction (idempotent). */
  async applyIdentityEvent(tx: Tx, event: IncomingEvent, prefix: string): Promise<void> {
    const e = decodeIdentityEvent(event.subject.slice(prefix.length), event.payload);
    if (!e) return; // an identity event this build does not know
    const now = this.clock.now().toISOString();
    switch (e.name) {
      case 'user.registered':
        await tx.query(`INSERT INTO chat.directory_users (user_id, status) VALUES (?, 'active') ON CONFLICT (user_id) DO NOTHING`, [e.payload.userId]);
        return;
      case 'user.deleted': {
        const { userId } = e.payload;
        await tx.query(
          `INSERT INTO chat.directory_users (user_id, status) VALUES (?, 'deleted')
           ON CONFLICT (user_id) DO UPDATE SET status = 'deleted', updated_at = now()`,
          [userId],
        );
        await tx.query(`UPDATE chat.directory_devices SET status = 'revoked', revoked_at = now() WHERE user_id = ? AND status = 'active'`, [userId]);
        for (const chatId of await this.chatsOf(tx, userId, false)) {
          await this.executeChat(tx, chatId, (lastSeq) => ({ type: 'RemoveDeletedUser', userId, lastSeq, now }), {});
        }
        return;
      }
      case 'device.registered': {
        const p = e.payload;
        await tx.query(`INSERT INTO chat.directory_users (user_id, status) VALUES (?, 'active') ON CONFLICT (user_id) DO NOTHING`, [p.userId]);
        await tx.query(
          `INSERT INTO chat.directory_devices (device_id, user_id, signing_key, status, registered_at)
           VALUES (?, ?, ?, 'active', ?) ON CONFLICT (device_id) DO NOTHING`,
          [p.deviceId, p.userId, p.signingKey, p.occurredAt || now],
        );
        return;
      }
      case 'device.revoked': {
        const { deviceId, userId } = e.payload;
        const at = e.payload.occurredAt || now;
        await tx.query(
          `INSERT INTO chat.directory_devices (device_id, user_id, signing_key, status, registered_at, revoked_at)
           VALUES (?, ?, '', 'revoked', ?, ?)
           ON CONFLICT (device_id) DO UPDATE SET status = 'revoked', revoked_at = excluded.revoked_at`,
          [deviceId, userId, at, at],
        );
        for (const chatId of await this.chatsOf(tx, userId, true)) {
          await this.executeChat(tx, chatId, () => ({ type: 'RequireRotationForDevice', userId, deviceId, now }), {});
        }
        return;
      }
      default:
        return; // other identity events don't concern chats
    }
  }

  // --- what the identity-event handling above uses ----------------------------

  private executeChat(
    tx: Tx,
    chatId: string,
    build: (lastSeq: number, state: ChatState) => ChatCommand | Promise<ChatCommand>,
    metadata: EventMetadata,
  ): Promise<StoredEvent[]> {
    return executeChat(this.store, tx, chatId, build, metadata).then((r) => r.events);
  }

  private chatsOf(tx: Tx, userId: string, groupsOnly: boolean): Promise<string[]> {
    return chatsOf(tx, userId, groupsOnly);
  }
}
