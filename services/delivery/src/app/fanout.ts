// Fan-out of chat events: each event is handled once by one node (the nodes
// share one durable JetStream consumer, a work queue), which looks up the
// chat's members (cached from chat's events) and their devices' nodes (one
// Redis round trip for both, MembershipCache.route) and sends one NATS
// message per node.
import { decodeChatEvent } from '@bil/proto/events';
import { AppError, type Logger } from '@bil/runtime';
import { isChatEventKind } from '../domain/chat-events.js';
import { chatEventFrame, messageFrame, receiptFrame } from '../domain/frames.js';
import type { MembershipCache } from '../infra/membership.js';
import type { Hub } from './hub.js';
import type { PushNotifier } from './push/notifier.js';
import { routeEvent, type DeliveryMetrics } from './metrics.js';

const SERVICE_SESSION = 'delivery';

export class Fanout {
  constructor(
    private readonly prefix: string,
    private readonly hub: Pick<Hub, 'dispatch' | 'dispatchToChat'>,
    private readonly membership: MembershipCache,
    private readonly metrics: DeliveryMetrics,
    private readonly logger: Logger,
    /** Content-free pushes to offline devices (absent: push is off). */
    private readonly push?: Pick<PushNotifier, 'notify'>,
  ) {}

  /** Routes one chat event; resolves when every target node has been sent its message. */
  async handle(subject: string, p: unknown): Promise<void> {
    await routeEvent({ metrics: this.metrics, logger: this.logger, prefix: this.prefix }, subject, async (name) => {
      try {
        await this.route(name, p);
      } catch (err) {
        // A chat that chat no longer answers for (deleted, sender gone) has nobody to deliver to.
        if (err instanceof AppError && (err.kind === 'not_found' || err.kind === 'permission_denied' || err.kind === 'invalid_argument' || err.kind === 'unauthenticated')) {
          this.logger.info({ subject: name, code: err.code }, 'event skipped: chat refused the membership lookup');
          return;
        }
        throw err;
      }
    });
  }

  private async route(name: string, raw: unknown): Promise<void> {
    const e = decodeChatEvent(name, raw);
    if (!e || !e.payload.chatId) return;
    const { chatId } = e.payload;
    switch (e.name) {
      case 'message.posted': {
        const p = e.payload;
        const sender = { userId: p.senderUserId, deviceId: p.senderDeviceId, sessionId: SERVICE_SESSION };
        const seq = Number(p.seq);
        const frame = messageFrame({
          chatId,
          seq,
          messageId: p.messageId,
          senderUserId: sender.userId,
          senderDeviceId: sender.deviceId,
          epoch: Number(p.epoch),
          envelope: p.envelope,
          createdAt: p.occurredAt,
        });
        let keys: Record<string, string> | undefined;
        if (p.wrappedKeys.length > 0) {
          keys = {};
          for (const k of p.wrappedKeys) if (k.deviceId && k.wrappedKey) keys[k.deviceId] = k.wrappedKey;
        }
        const routed = await this.hub.dispatchToChat(chatId, sender, { frame, keys, chatId, seq });
        if (this.push) {
          const live = new Set<string>();
          for (const devices of routed.located.values()) for (const d of devices) live.add(d.deviceId);
          // The sender's own devices are not woken for their own message.
          this.push.notify(chatId, [...routed.membership.members.keys()].filter((u) => u !== sender.userId), live);
        }
        return;
      }
      case 'message.read': {
        const m = await this.membership.peek(chatId);
        if (!m) return; // ephemeral: nobody is typing into a chat no node has looked at
        await this.hub.dispatch(m.members.keys(), { frame: receiptFrame({ chatId, userId: e.payload.userId, seq: Number(e.payload.lastReadSeq), durable: true }) });
        return;
      }
      case 'chat.created': {
        const members = new Map<string, number>();
        for (const member of e.payload.members) if (member.userId) members.set(member.userId, 0);
        await this.membership.put(chatId, { type: e.payload.type === 'CHAT_TYPE_GROUP' ? 'group' : 'personal', members });
        await this.hub.dispatch(members.keys(), { frame: chatEventFrame('chat_created', chatId, e.payload), chatId });
        return;
      }
      case 'chat.member_added': {
        const { userId } = e.payload;
        await this.membership.added(chatId, userId, Number(e.payload.joinedSeq));
        const m = await this.membership.peek(chatId);
        await this.hub.dispatch(new Set([...(m?.members.keys() ?? []), userId]), { frame: chatEventFrame('member_added', chatId, e.payload), chatId });
        return;
      }
      case 'chat.member_removed': {
        const { userId } = e.payload;
        await this.membership.removed(chatId, userId);
        const m = await this.membership.peek(chatId);
        await this.hub.dispatch(new Set([...(m?.members.keys() ?? []), userId]), { frame: chatEventFrame('member_removed', chatId, e.payload) });
        return;
      }
      case 'chat.deleted': {
        await this.membership.deleted(chatId);
        await this.hub.dispatch(e.payload.memberUserIds, { frame: chatEventFrame('chat_deleted', chatId, e.payload) });
        return;
      }
      case 'message.deleted':
      case 'chat.disappearing_timer_set': {
        // Delete for everyone and timer changes: every member device hides the message / shows the timer
        // (the tombstone is JSON text the client verifies before attributing the deletion to the sender).
        const m = await this.membership.peek(chatId);
        if (!m) return;
        const kind = e.name === 'message.deleted' ? 'message_deleted' : 'disappearing_timer_set';
        await this.hub.dispatch(m.members.keys(), { frame: chatEventFrame(kind, chatId, e.payload), chatId });
        return;
      }
      case 'chat.role_changed':
      case 'chat.epoch_published':
      case 'chat.epoch_keys_added':
      case 'chat.epoch_rotation_required': {
        // Key and role changes: clients refetch epochs (ListEpochs) or the chat on these.
        const m = await this.membership.peek(chatId);
        if (!m) return;
        const kind = e.name.slice('chat.'.length);
        if (!isChatEventKind(kind)) return;
        await this.hub.dispatch(m.members.keys(), { frame: chatEventFrame(kind, chatId, e.payload) });
        return;
      }
      default:
        return;
    }
  }
}
