// Digest events to devices: `digest.v1.digest.ready` and `.failed` go to the
// one device that asked (the results are sealed to it alone; the frame only
// says "fetch it"), `digest.v1.policy.changed` to the chat's members so their
// clients stop or start offering digests. Like typing and receipts these are
// live hints, not a durable queue: a device that was offline finds the
// outcome with `GET /v1/digests/{id}` (the SDK polls as a fallback) and the
// policy with `GET /v1/chats/{chat_id}/digest-policy`.
import type { Logger } from '@bil/runtime';
import { digestFrame, digestPolicyFrame } from '../domain/frames.js';
import type { MembershipCache } from '../infra/membership.js';
import type { Hub } from './hub.js';
import { timedRoute, type DeliveryMetrics } from './metrics.js';

type Payload = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export class DigestFanout {
  constructor(
    private readonly prefix: string,
    private readonly hub: Pick<Hub, 'dispatch' | 'dispatchToDevice'>,
    private readonly membership: Pick<MembershipCache, 'peek'>,
    private readonly metrics: DeliveryMetrics,
    private readonly logger: Logger,
  ) {}

  async handle(subject: string, p: Payload): Promise<void> {
    await timedRoute(this.metrics, this.prefix, subject, (name) => this.route(name, p));
  }

  private async route(name: string, p: Payload): Promise<void> {
    switch (name) {
      case 'digest.v1.digest.ready':
      case 'digest.v1.digest.failed': {
        const requestId = str(p.requestId);
        const userId = str(p.userId);
        const deviceId = str(p.deviceId);
        if (!requestId || !userId || !deviceId) {
          this.logger.warn({ subject: name }, 'digest event without request, user or device; skipped');
          return;
        }
        const frame =
          name === 'digest.v1.digest.ready'
            ? digestFrame({
                event: 'ready',
                requestId,
                chatIds: Array.isArray(p.chatIds) ? p.chatIds.filter((c): c is string => typeof c === 'string') : [],
                method: str(p.method),
                expiresAt: str(p.expiresAt),
              })
            : digestFrame({ event: 'failed', requestId, reason: str(p.reason) });
        const sent = await this.hub.dispatchToDevice(userId, deviceId, { frame });
        this.logger.debug({ requestId, sent }, 'digest outcome pushed');
        return;
      }
      case 'digest.v1.policy.changed': {
        const chatId = str(p.chatId);
        if (!chatId) return;
        // Members are known once any node has routed something of the chat;
        // otherwise none of them has looked at it live and they read the policy on demand.
        const m = await this.membership.peek(chatId);
        if (!m) return;
        const frame = digestPolicyFrame({ chatId, userId: str(p.userId), enabled: p.enabled === true, disabledByCount: Number(p.disabledByCount ?? 0) || 0 });
        await this.hub.dispatch(m.members.keys(), { frame });
        return;
      }
      default:
        return; // digest.v1.key.rotated: clients fetch the key with each request
    }
  }
}
