// What digest publishes: the public contract in proto/bil/digest/v1/events.proto
// (proto3 JSON mapping). Requests and expiries stay private; no event carries
// a transcript or a summary, not even sealed. Each payload is the generated
// type of its message (`@bil/proto/events`), which delivery decodes.
import { digestEvent, type DigestFailed } from '@bil/proto/events';
import type { OutboundMessage, StoredEvent } from '@bil/runtime';
import type { DigestEvent, FailureReason } from '../domain/digest/digest.js';
import type { PolicyEvent } from '../domain/policy/policy.js';
import type { KeysEvent } from '../domain/keys/keys.js';
import type { ConsentEvent } from '../domain/consent/consent.js';

export const FAILURE_REASON_ENUM: Record<FailureReason, DigestFailed['reason']> = {
  summarizer_unavailable: 'DIGEST_FAILURE_REASON_SUMMARIZER_UNAVAILABLE',
  timeout: 'DIGEST_FAILURE_REASON_TIMEOUT',
  summarizer_rejected: 'DIGEST_FAILURE_REASON_SUMMARIZER_REJECTED',
  undecryptable: 'DIGEST_FAILURE_REASON_UNDECRYPTABLE',
  invalid_transcript: 'DIGEST_FAILURE_REASON_INVALID_TRANSCRIPT',
  device_unavailable: 'DIGEST_FAILURE_REASON_DEVICE_UNAVAILABLE',
  abandoned: 'DIGEST_FAILURE_REASON_ABANDONED',
  digests_disabled: 'DIGEST_FAILURE_REASON_DIGESTS_DISABLED',
  internal: 'DIGEST_FAILURE_REASON_INTERNAL',
};

export function digestIntegrationEvent(prefix: string, stored: StoredEvent): OutboundMessage | null {
  const e = { type: stored.type, data: stored.data } as DigestEvent | PolicyEvent | KeysEvent | ConsentEvent;
  switch (e.type) {
    case 'DigestCompleted': {
      const d = e.data;
      return digestEvent(prefix, 'digest.ready', {
        requestId: d.requestId,
        userId: d.userId,
        deviceId: d.deviceId,
        chatIds: d.chatIds,
        method: d.method,
        expiresAt: d.expiresAt,
        occurredAt: d.occurredAt,
      });
    }
    case 'DigestFailed': {
      const d = e.data;
      return digestEvent(prefix, 'digest.failed', { requestId: d.requestId, userId: d.userId, deviceId: d.deviceId, reason: FAILURE_REASON_ENUM[d.reason], occurredAt: d.occurredAt });
    }
    case 'DigestsSwitchedOff':
    case 'DigestsSwitchedOn': {
      const d = e.data;
      return digestEvent(prefix, 'policy.changed', { chatId: d.chatId, userId: d.userId, enabled: d.disabledByCount === 0, disabledByCount: d.disabledByCount, occurredAt: d.occurredAt });
    }
    case 'DigestConsentChanged': {
      const d = e.data;
      return digestEvent(prefix, 'consent.changed', {
        chatId: d.chatId,
        userId: d.userId,
        deviceId: d.deviceId,
        include: d.include,
        version: String(d.version),
        consent: d.consent,
        occurredAt: d.occurredAt,
      });
    }
    case 'DigestKeyIssued': {
      const d = e.data;
      return digestEvent(prefix, 'key.rotated', { keyId: d.keyId, previousKeyId: d.previousKeyId, expiresAt: String(d.expiresAt), occurredAt: d.occurredAt });
    }
    case 'DigestRequested':
    case 'DigestExpired':
      return null;
    default: {
      const unknown: never = e;
      return unknown;
    }
  }
}
