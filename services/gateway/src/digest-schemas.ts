// JSON schemas of the digest routes (/v1/digest/key, /v1/digests,
// /v1/chats/{chat_id}/digest-policy and /digest-consent). Structure and size only: the digest
// service checks the sealed boxes' headers (kind, context, key id), the
// caller's membership and the policy, and answers with its own codes
// (docs/digest.md). Sealed boxes are JSON objects here and JSON text to the
// digest service. The digest objects are shared schemas in
// @bil/proto/rest-digest; the request types are derived from the route
// schemas (FromSchema).
import type { FromSchema } from '@bil/proto/rest';
import { digestSharedSchemas, type SealedBoxJson } from '@bil/proto/rest-digest';
import { MAX_DIGEST_CHATS, MAX_SEALED_CIPHERTEXT_CHARS } from '@bil/proto/limits';
import { BEARER, errors } from './schemas.js';

export { MAX_DIGEST_CHATS, MAX_SEALED_CIPHERTEXT_CHARS };
export type { SealedBoxJson };

const uuid = (description: string) => ({ type: 'string' as const, format: 'uuid', maxLength: 36, description });
const ref = <Id extends (typeof digestSharedSchemas)[number]['$id']>(id: Id) => ({ $ref: `${id}#` as const });

/** The digest objects' shared schemas (SealedBox, Digest, DigestConsent, DigestPolicy, DigestKey): in @bil/proto/rest-digest with their derived JSON types. */
export { digestSharedSchemas };

const bodyErrors = [400, 413, 415];

export const digestKeySchema = {
  tags: ['digests'],
  summary: "The digest service's current signed encryption key and the client-side limits.",
  description: 'Verify `key.signed_key` with the service identity key the client is configured with; never trust `service_identity_key` from here.',
  security: BEARER,
  response: {
    200: ref('DigestKey'),
    ...errors(401),
  },
} as const;

export type RequestDigestBody = FromSchema<typeof requestDigestSchema.body>;
export const requestDigestSchema = {
  tags: ['digests'],
  summary: 'Asks for summaries of chats: one transcript per chat, decrypted on the client and sealed to the digest key.',
  description: 'Answers 201 when queued, 200 for a repeat of a known `request_id` (idempotent). Poll `GET /v1/digests/{request_id}`.',
  security: BEARER,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['request_id', 'transcripts'],
    properties: {
      request_id: uuid('A UUID the client chooses; the same id again returns the same request.'),
      transcripts: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_DIGEST_CHATS,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['chat_id', 'sealed'],
          properties: {
            chat_id: uuid('The chat.'),
            sealed: ref('SealedBox'),
            message_count: { type: 'integer', minimum: 0, maximum: 100_000, description: 'Informational.' },
          },
        },
      },
    },
  },
  response: {
    200: { type: 'object', required: ['digest', 'created'], properties: { digest: ref('Digest'), created: { type: 'boolean' } } },
    201: { type: 'object', required: ['digest', 'created'], properties: { digest: ref('Digest'), created: { type: 'boolean' } } },
    ...errors(...bodyErrors, 401, 403, 404, 409, 429),
  },
} as const;

export type DigestParams = FromSchema<typeof getDigestSchema.params>;
export const getDigestSchema = {
  tags: ['digests'],
  summary: "One of the caller's digest requests; once ready, its summaries sealed to the requesting device.",
  security: BEARER,
  params: { type: 'object', additionalProperties: false, required: ['request_id'], properties: { request_id: uuid('The request id.') } },
  response: {
    200: { type: 'object', required: ['digest'], properties: { digest: ref('Digest') } },
    ...errors(400, 401, 404),
  },
} as const;

const policyParams = { type: 'object', additionalProperties: false, required: ['chat_id'], properties: { chat_id: uuid('The chat.') } } as const;
const policyResponse = {
  type: 'object',
  required: ['policy', 'min_unread_messages'],
  properties: { policy: ref('DigestPolicy'), min_unread_messages: { type: 'integer', description: "The server's suggested unread threshold: advisory, clients use their own setting." } },
} as const;

export type PolicyParams = FromSchema<typeof getDigestPolicySchema.params>;
export const getDigestPolicySchema = {
  tags: ['digests'],
  summary: "A chat's digest policy and the unread threshold.",
  security: BEARER,
  params: policyParams,
  response: { 200: policyResponse, ...errors(400, 401, 404) },
} as const;

export type PolicyBody = FromSchema<typeof setDigestPolicySchema.body>;
export const setDigestPolicySchema = {
  tags: ['digests'],
  summary: 'Switches digests off for a chat (for every member), or withdraws the caller’s own switch-off.',
  security: BEARER,
  params: policyParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['enabled'],
    properties: { enabled: { type: 'boolean', description: 'false switches digests off; true withdraws your own switch-off (others remain).' } },
  },
  response: {
    200: { type: 'object', required: ['policy'], properties: { policy: ref('DigestPolicy') } },
    ...errors(...bodyErrors, 401, 404),
  },
} as const;

export type ConsentBody = FromSchema<typeof setDigestConsentSchema.body>;
export const setDigestConsentSchema = {
  tags: ['digests'],
  summary: "Stores the caller's signed digest consent for a chat (leave my messages out of digests, or withdraw that).",
  description:
    'The statement must be for this chat and the calling user and device, signed by that device, with a `version` higher than the one stored (409 `consent_stale`; the same statement again answers 200). 400 `invalid_consent` when it does not verify.',
  security: BEARER,
  params: policyParams,
  body: { type: 'object', additionalProperties: false, required: ['consent'], properties: { consent: ref('DigestConsent') } },
  response: {
    200: { type: 'object', required: ['consent'], properties: { consent: ref('DigestConsent') } },
    ...errors(...bodyErrors, 401, 404, 409),
  },
} as const;
