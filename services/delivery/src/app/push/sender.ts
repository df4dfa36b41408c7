// The one seam between delivery and a push service (docs/push.md, "Native
// apps"). Web Push (infra/push/web-push-sender.ts) is one implementation; an
// APNs or FCM sender for native apps implements the same interface with the
// device's token as its target, and the notifier does the rest (who is
// offline, collapsing, rate limit, retry, removal of dead subscriptions).
import { PUSH_PAYLOAD_TYPE } from '@bil/proto/limits';

/** A device's subscription, as identity stores it. The endpoint is a capability: never logged. */
export interface PushTarget {
  deviceId: string;
  userId: string;
  endpoint: string;
  p256dh: string;
  auth: string;
}

/** What a push says: how many chats have new messages. No sender, no text, no chat id. */
export interface PushNotice {
  chats: number;
}

/**
 * `sent`: the push service took it. `gone`: the subscription no longer exists
 * (404/410): remove it. `retry`: a transient failure (network, 429, 5xx):
 * worth one more try. `failed`: refused for good (other 4xx).
 */
export type PushOutcome = { status: 'sent' } | { status: 'gone' } | { status: 'retry' | 'failed'; reason: string };

export interface PushSender {
  send(target: PushTarget, notice: PushNotice): Promise<PushOutcome>;
}

/** The payload every push carries, exactly `{"type":"bil.push.v1","chats":N}`. */
export function pushPayload(notice: PushNotice): string {
  return JSON.stringify({ type: PUSH_PAYLOAD_TYPE, chats: notice.chats });
}

/** The endpoint's host, for logs: the path (the subscription's secret part) never is. */
export function endpointHost(endpoint: string): string {
  try {
    return new URL(endpoint).host;
  } catch {
    return 'invalid';
  }
}
