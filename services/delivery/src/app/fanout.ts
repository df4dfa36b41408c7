// Fan-out of chat events: each event is handled once by one node (the nodes
// share one durable JetStream consumer, a work queue), which looks up the
// chat's members (cached from chat's events), their devices' nodes (one
// presence round trip) and sends one NATS message per node.
import { AppError, type Logger } from '@bil/runtime';
import { isChatEventKind } from '../domain/chat-events.js';
import { chatEventFrame, messageFrame, receiptFrame } from '../domain/frames.js';
import type { MembershipCache } from '../infra/membership.js';
import type { Hub } from './hub.js';
import { timedRoute, type DeliveryMetrics } from './metrics.js';

type Payload = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'string' || typeof v === 'number' ? Number(v) : 0);
const SERVICE_SESSION = 'delivery';

export class Fanout {
  constructor(
    private readonly prefix: string,
    private readonly hub: Pick<Hub, 'dispatch'>,
    private readonly membership: MembershipCache,
    private readonly metrics: DeliveryMetrics,
    private readonly logger: Logger,
  ) {}

  /** Routes one chat event; resolves when every target node has been sent its message. */
  async handle(subject: string, p: Payload): Promise<void> {
    await timedRoute(this.metrics, this.prefix, subject, async (name) => {
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

  private async route(name: string, p: Payload): Promise<void> {
    const chatId = str(p.chatId);
    if (!chatId) return;
    switch (name) {
      case 'chat.v1.message.posted': {
        const sender = { userId: str(p.senderUserId), deviceId: str(p.senderDeviceId), sessionId: SERVICE_SESSION };
        const m = await this.membership.get(chatId, sender);
        const seq = num(p.seq);
        const frame = messageFrame({
          chatId,
          seq,
          messageId: str(p.messageId),
          senderUserId: sender.userId,
          senderDeviceId: sender.deviceId,
          epoch: num(p.epoch),
          envelope: str(p.envelope),
          createdAt: str(p.occurredAt),
        });
        let keys: Record<string, string> | undefined;
        if (Array.isArray(p.wrappedKeys) && p.wrappedKeys.length > 0) {
          keys = {};
          for (const k of p.wrappedKeys as Array<{ deviceId?: string; wrappedKey?: string }>) {
            if (k.deviceId && k.wrappedKey) keys[k.deviceId] = k.wrappedKey;
          }
        }
        await this.hub.dispatch(m.members.keys(), { frame, keys, chatId, seq });
        return;
      }
      case 'chat.v1.message.read': {
        const m = await this.membership.peek(chatId);
        if (!m) return; // ephemeral: nobody is typing into a chat no node has looked at
        await this.hub.dispatch(m.members.keys(), { frame: receiptFrame({ chatId, userId: str(p.userId), seq: num(p.lastReadSeq), durable: true }) });
        return;
      }
      case 'chat.v1.chat.created': {
        const members = new Map<string, number>();
        for (const e of (p.members as Array<{ userId?: string }> | undefined) ?? []) if (e.userId) members.set(e.userId, 0);
        await this.membership.put(chatId, { type: p.type === 'CHAT_TYPE_GROUP' ? 'group' : 'personal', members });
        await this.hub.dispatch(members.keys(), { frame: chatEventFrame('chat_created', chatId, p) });
        return;
      }
      case 'chat.v1.chat.member_added': {
        await this.membership.added(chatId, str(p.userId), num(p.joinedSeq));
        const m = await this.membership.peek(chatId);
        await this.hub.dispatch(new Set([...(m?.members.keys() ?? []), str(p.userId)]), { frame: chatEventFrame('member_added', chatId, p) });
        return;
      }
      case 'chat.v1.chat.member_removed': {
        await this.membership.removed(chatId, str(p.userId));
        const m = await this.membership.peek(chatId);
        await this.hub.dispatch(new Set([...(m?.members.keys() ?? []), str(p.userId)]), { frame: chatEventFrame('member_removed', chatId, p) });
        return;
      }
      case 'chat.v1.chat.deleted': {
        await this.membership.deleted(chatId);
        await this.hub.dispatch((p.memberUserIds as string[] | undefined) ?? [], { frame: chatEventFrame('chat_deleted', chatId, p) });
        return;
      }
      case 'chat.v1.chat.role_changed':
      case 'chat.v1.chat.epoch_published':
      case 'chat.v1.chat.epoch_keys_added':
      case 'chat.v1.chat.epoch_rotation_required': {
        // Key and role changes: clients refetch epochs (ListEpochs) or the chat on these.
        const m = await this.membership.peek(chatId);
        if (!m) return;
        const kind = name.slice('chat.v1.chat.'.length);
        if (!isChatEventKind(kind)) return;
        await this.hub.dispatch(m.members.keys(), { frame: chatEventFrame(kind, chatId, p) });
        return;
      }
      default:
        return;
    }
  }
}
