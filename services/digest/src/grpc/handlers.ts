// gRPC surface of the digest service: maps proto messages to the application
// layer and back. Validation lives in the app and domain layers.
import type { AsyncHandlers } from '@bil/runtime';
import type { DigestServiceHandlers } from '@bil/proto/gen/bil/digest/v1/DigestService';
import type { Digest } from '@bil/proto/gen/bil/digest/v1/Digest';
import type { ChatDigestPolicy } from '@bil/proto/gen/bil/digest/v1/ChatDigestPolicy';
import { requireActor, type DigestApp, type DigestView, type PolicyView } from '../app/digest-app.js';
import { FAILURE_REASON_ENUM } from '../infra/integration-events.js';
import type { DigestConsents } from '../app/consent.js';

const STATUS: Record<DigestView['status'], Digest['status']> = {
  pending: 'DIGEST_STATUS_PENDING',
  ready: 'DIGEST_STATUS_READY',
  failed: 'DIGEST_STATUS_FAILED',
  expired: 'DIGEST_STATUS_EXPIRED',
};

export const digestMsg = (d: DigestView): Digest => ({
  requestId: d.requestId,
  status: STATUS[d.status],
  failureReason: (d.failureReason ? FAILURE_REASON_ENUM[d.failureReason] : 'DIGEST_FAILURE_REASON_UNSPECIFIED') as Digest['failureReason'],
  deviceId: d.deviceId,
  chatIds: d.chatIds,
  results: d.results.map((r) => ({ chatId: r.chatId, sealed: r.sealed })),
  requestedAt: d.requestedAt,
  completedAt: d.completedAt,
  expiresAt: d.expiresAt,
  method: d.method,
});

const policyMsg = (p: PolicyView, consents: string[] = []): ChatDigestPolicy => ({ ...p, consents });

export function digestHandlers(app: DigestApp, consents: DigestConsents): AsyncHandlers<DigestServiceHandlers> {
  return {
    GetDigestKey: async () => {
      const { key, serviceIdentityKey, settings } = await app.getKey();
      return {
        key: { keyId: key.keyId, signedKey: key.signedKey, issuedAt: String(key.issuedAt), expiresAt: String(key.expiresAt) },
        serviceIdentityKey,
        minUnreadMessages: settings.minUnread,
        maxChatsPerRequest: settings.maxChatsPerRequest,
        maxTranscriptBytes: settings.maxTranscriptBytes,
        modelConfigured: settings.modelConfigured,
      };
    },
    GetDigestPolicy: async (req) => {
      const policies = await app.getPolicy(requireActor(req.actor), req.chatIds);
      const statements = await consents.ofCurrentMembers(policies.map((p) => p.chatId));
      return { policies: policies.map((p) => policyMsg(p, statements.get(p.chatId))), minUnreadMessages: app.settings.minUnread };
    },
    SetDigestPolicy: async (req) => {
      const policy = await app.setPolicy(requireActor(req.actor), req.chatId, req.enabled);
      return { policy: policyMsg(policy, (await consents.ofCurrentMembers([policy.chatId])).get(policy.chatId)) };
    },
    SetDigestConsent: async (req) => ({ consent: await consents.set(requireActor(req.actor), req.chatId, req.consent) }),
    RequestDigest: async (req) => {
      const r = await app.requestDigest(
        requireActor(req.actor),
        req.requestId,
        req.transcripts.map((t) => ({ chatId: t.chatId, sealed: t.sealed })),
      );
      return { digest: digestMsg(r.digest), created: r.created };
    },
    GetDigest: async (req) => ({ digest: digestMsg(await app.getDigest(requireActor(req.actor), req.requestId)) }),
  };
}
