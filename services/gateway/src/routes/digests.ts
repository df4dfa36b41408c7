// /v1/digest/key, /v1/digests, /v1/chats/{chat_id}/digest-policy and
// /v1/chats/{chat_id}/digest-consent: each
// mapped to one DigestService RPC with the verified actor. The digest service
// decides membership, policy, limits and the sealed boxes' headers; these
// handlers only translate (sealed boxes: JSON objects here, JSON text there).
import type { FastifyInstance } from 'fastify';
import { AppError } from '@bil/runtime';
import type { ChatDigestPolicy, Digest, DigestApi } from '../digest-client.js';
import { parseStored } from '../chat-mappers.js';
import { int64ToNumber } from '../mappers.js';
import type { DigestConsentJson, DigestJson, DigestKeyJson, DigestPolicyJson, DigestStatusJson, SealedBoxJson } from '@bil/proto/rest-digest';
import {
  digestKeySchema,
  getDigestPolicySchema,
  getDigestSchema,
  requestDigestSchema,
  setDigestConsentSchema,
  setDigestPolicySchema,
  type ConsentBody,
  type DigestParams,
  type PolicyBody,
  type PolicyParams,
  type RequestDigestBody,
} from '../digest-schemas.js';
import { actorOf, inContext, type RouteContext } from './context.js';

/** A signed consent statement is about 400 bytes. */
const CONSENT_BODY_LIMIT_BYTES = 4096;

const lower = (v: string | undefined, prefix: string): string => (v && v.startsWith(prefix) ? v.slice(prefix.length).toLowerCase() : '');
const STATUSES: readonly string[] = ['pending', 'ready', 'failed', 'expired'] satisfies DigestStatusJson[];
// Sealed boxes and consents are stored by the digest service after it checked them; served as it stored them.
const sealedBox = (text: string, what: string) => parseStored(text, what) as SealedBoxJson;
const consentJson = (text: string) => parseStored(text, 'consent') as DigestConsentJson;

export function digestJson(d: Digest | null | undefined): DigestJson {
  if (!d) throw new AppError('internal', 'internal', 'digest returned no digest');
  const reason = lower(String(d.failureReason ?? ''), 'DIGEST_FAILURE_REASON_');
  const status = lower(String(d.status ?? ''), 'DIGEST_STATUS_');
  return {
    request_id: d.requestId,
    status: STATUSES.includes(status) ? (status as DigestStatusJson) : 'pending',
    failure_reason: reason === 'unspecified' ? '' : reason,
    device_id: d.deviceId,
    chat_ids: d.chatIds ?? [],
    results: (d.results ?? []).map((r) => ({ chat_id: r.chatId, sealed: sealedBox(r.sealed, 'sealed result') })),
    requested_at: d.requestedAt,
    completed_at: d.completedAt,
    expires_at: d.expiresAt,
    method: d.method,
  };
}

export function policyJson(p: ChatDigestPolicy | null | undefined): DigestPolicyJson {
  if (!p) throw new AppError('internal', 'internal', 'digest returned no policy');
  return {
    chat_id: p.chatId,
    enabled: p.enabled,
    disabled_by_me: p.disabledByMe,
    disabled_by_count: p.disabledByCount,
    consents: (p.consents ?? []).map(consentJson),
  };
}

export function digestRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const auth = { onRequest: ctx.authenticate };
  const digest = (): DigestApi => {
    if (!ctx.digest) throw new AppError('unavailable', 'service_unavailable', 'the digest service is not configured');
    return ctx.digest;
  };

  app.get('/v1/digest/key', { schema: digestKeySchema, ...auth }, async (request): Promise<DigestKeyJson> => {
    const res = await inContext(request, () => digest().getDigestKey({}));
    const k = res.key;
    if (!k) throw new AppError('internal', 'internal', 'digest returned no key');
    return {
      key: { key_id: k.keyId, signed_key: parseStored(k.signedKey, 'signed key'), issued_at: int64ToNumber(k.issuedAt), expires_at: int64ToNumber(k.expiresAt) },
      service_identity_key: res.serviceIdentityKey,
      min_unread_messages: res.minUnreadMessages,
      max_chats_per_request: res.maxChatsPerRequest,
      max_transcript_bytes: res.maxTranscriptBytes,
      model_configured: res.modelConfigured,
    };
  });

  app.post<{ Body: RequestDigestBody }>(
    '/v1/digests',
    { schema: requestDigestSchema, ...auth, bodyLimit: ctx.bodyLimits.digest },
    async (request, reply) => {
      const b = request.body;
      const res = await inContext(request, () =>
        digest().requestDigest({
          actor: actorOf(request),
          requestId: b.request_id,
          transcripts: b.transcripts.map((t) => ({ chatId: t.chat_id, sealed: JSON.stringify(t.sealed), messageCount: t.message_count ?? 0 })),
        }),
      );
      return reply.code(res.created ? 201 : 200).send({ digest: digestJson(res.digest), created: res.created });
    },
  );

  app.get<{ Params: DigestParams }>('/v1/digests/:request_id', { schema: getDigestSchema, ...auth }, async (request) => {
    const res = await inContext(request, () => digest().getDigest({ actor: actorOf(request), requestId: request.params.request_id }));
    return { digest: digestJson(res.digest) };
  });

  app.get<{ Params: PolicyParams }>('/v1/chats/:chat_id/digest-policy', { schema: getDigestPolicySchema, ...auth }, async (request) => {
    const res = await inContext(request, () => digest().getDigestPolicy({ actor: actorOf(request), chatIds: [request.params.chat_id] }));
    const p = res.policies[0];
    if (!p) throw new AppError('not_found', 'chat_not_found', 'no such chat');
    return { policy: policyJson(p), min_unread_messages: res.minUnreadMessages };
  });

  app.put<{ Params: PolicyParams; Body: PolicyBody }>(
    '/v1/chats/:chat_id/digest-policy',
    { schema: setDigestPolicySchema, ...auth },
    async (request) => {
      const res = await inContext(request, () =>
        digest().setDigestPolicy({ actor: actorOf(request), chatId: request.params.chat_id, enabled: request.body.enabled }),
      );
      return { policy: policyJson(res.policy) };
    },
  );

  app.put<{ Params: PolicyParams; Body: ConsentBody }>(
    '/v1/chats/:chat_id/digest-consent',
    { schema: setDigestConsentSchema, ...auth, bodyLimit: CONSENT_BODY_LIMIT_BYTES },
    async (request) => {
      const res = await inContext(request, () =>
        digest().setDigestConsent({ actor: actorOf(request), chatId: request.params.chat_id, consent: JSON.stringify(request.body.consent) }),
      );
      return { consent: consentJson(res.consent) };
    },
  );
}
