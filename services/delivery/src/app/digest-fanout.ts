// Digest events to devices: `digest.v1.digest.ready` and `.failed` go to the
// one device that asked (the results are sealed to it alone; the frame only
// says "fetch it"), `digest.v1.policy.changed` to the chat's members so their
// clients stop or start offering digests. Like typing and receipts these are
// live hints, not a durable queue: a device that was offline finds the
// outcome with `GET /v1/digests/{id}` (the SDK polls as a fallback) and the
// policy with `GET /v1/chats/{chat_id}/digest-policy`.
import { decodeDigestEvent } from '@bil/proto/events';
import type { Logger } from '@bil/runtime';
import { digestFrame, digestPolicyFrame } from '../domain/frames.js';
import type { MembershipCache } from '../infra/membership.js';
import type { Hub } from './hub.js';
import { routeEvent, type DeliveryMetrics } from './metrics.js';

export class DigestFanout {
  constructor(
    private readonly prefix: string,
    private readonly hub: Pick<Hub, 'dispatch' | 'dispatchToDevice'>,
    private readonly membership: Pick<MembershipCache, 'peek'>,
    private readonly metrics: DeliveryMetrics,
    private readonly logger: Logger,
  ) {}

  async handle(subject: string, p: unknown): Promise<void> {
    await routeEvent({ metrics: this.metrics, logger: this.logger, prefix: this.prefix }, subject, (name) => this.route(name, p));
  }

  private async route(name: string, raw: unknown): Promise<void> {
    const e = decodeDigestEvent(name, raw);
    if (!e) return;
    switch (e.name) {
      case 'digest.ready':
      case 'digest.failed': {
        const { requestId, userId, deviceId } = e.payload;
        if (!requestId || !userId || !deviceId) {
          this.logger.warn({ subject: name }, 'digest event without request, user or device; skipped');
          return;
        }
        const frame =
          e.name === 'digest.ready'
            ? digestFrame({ event: 'ready', requestId, chatIds: e.payload.chatIds, method: e.payload.method, expiresAt: e.payload.expiresAt })
            : digestFrame({ event: 'failed', requestId, reason: e.payload.reason });
        const sent = await this.hub.dispatchToDevice(userId, deviceId, { frame });
        this.logger.debug({ requestId, sent }, 'digest outcome pushed');
        return;
      }
      case 'policy.changed': {
        const { chatId, userId, enabled, disabledByCount } = e.payload;
        if (!chatId) return;
        // Members are known once any node has routed something of the chat;
        // otherwise none of them has looked at it live and they read the policy on demand.
        const m = await this.membership.peek(chatId);
        if (!m) return;
        const frame = digestPolicyFrame({ chatId, userId, enabled, disabledByCount });
        await this.hub.dispatch(m.members.keys(), { frame });
        return;
      }
      default:
        return; // consent.changed and key.rotated have no frame (clients fetch the key with each request)
    }
  }
}
