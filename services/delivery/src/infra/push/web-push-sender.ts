// Web Push through the `web-push` package: VAPID (RFC 8292) and the aes128gcm
// payload encryption of RFC 8291, which the package does; TTL, a Topic so the
// push service keeps only the latest undelivered push per device (RFC 8030
// §5.4), and a timeout.
import webpush from 'web-push';
import { pushPayload, type PushNotice, type PushOutcome, type PushSender, type PushTarget } from '../../app/push/sender.js';

export interface VapidSettings {
  publicKey: string;
  privateKey: string;
  /** mailto: or https: contact of the operator, sent to push services. */
  subject: string;
}

/** The Topic of every push: one per device at the push service, replaced by the next. */
export const PUSH_TOPIC = 'bil-new-messages';

export class WebPushSender implements PushSender {
  constructor(
    private readonly vapid: VapidSettings,
    private readonly opts: { ttlSeconds: number; timeoutMs: number },
  ) {
    // Fails at start on a malformed key or subject, not at the first push.
    webpush.getVapidHeaders('https://push.example', vapid.subject, vapid.publicKey, vapid.privateKey, 'aes128gcm');
  }

  async send(target: PushTarget, notice: PushNotice): Promise<PushOutcome> {
    try {
      await webpush.sendNotification({ endpoint: target.endpoint, keys: { p256dh: target.p256dh, auth: target.auth } }, pushPayload(notice), {
        vapidDetails: this.vapid,
        TTL: this.opts.ttlSeconds,
        topic: PUSH_TOPIC,
        urgency: 'normal',
        contentEncoding: 'aes128gcm',
        timeout: this.opts.timeoutMs,
      });
      return { status: 'sent' };
    } catch (err) {
      if (err instanceof webpush.WebPushError) {
        const code = err.statusCode;
        if (code === 404 || code === 410) return { status: 'gone' };
        if (code === 429 || code >= 500) return { status: 'retry', reason: `status ${code}` };
        return { status: 'failed', reason: `status ${code}` };
      }
      // Network errors: the message only (web-push's error objects may carry the endpoint).
      const e = err as { code?: string; message?: string };
      return { status: 'retry', reason: e.code ?? 'network error' };
    }
  }
}
