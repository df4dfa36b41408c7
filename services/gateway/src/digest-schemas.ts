// JSON schemas of the digest routes (/v1/digest/key, /v1/digests,
// /v1/chats/{chat_id}/digest-policy and /digest-consent). Structure and size only: the digest
// service checks the sealed boxes' headers (kind, context, key id), the
// caller's membership and the policy, and answers with its own codes
// (docs/digest.md). Sealed boxes are JSON objects here and JSON text to the
// digest service. The request types are derived from the route schemas
// (FromSchema, with the digest objects below for their $refs).
import type { FromSchema } from '@bil/proto/rest';
import { BEARER, errors } from './schemas.js';

import { MAX_DIGEST_CHATS, MAX_SEALED_CIPHERTEXT_CHARS } from '@bil/proto/limits';

export { MAX_DIGEST_CHATS, MAX_SEALED_CIPHERTEXT_CHARS };

const uuid = (description: string) => ({ type: 'string' as const, format: 'uuid', maxLength: 36, description });
const ref = <Id extends DigestSharedId>(id: Id) => ({ $ref: `${id}#` as const });

export const digestSharedSchemas = [
  {
    $id: 'SealedBox',
    type: 'object',
    description: 'A payload sealed to one recipient key and signed by its sender (docs/protocol.md, "Sealed payloads").',
    additionalProperties: false,
    required: ['header', 'wrapped_key', 'ciphertext', 'signature'],
    properties: {
      header: {
        type: 'object',
        description: 'The signed header: v, type, suite, key_id, kind, context, created_at, nonce, commitment, signer_key.',
        maxProperties: 16,
        additionalProperties: { oneOf: [{ type: 'string', maxLength: 512 }, { type: 'integer' }] },
      },
      wrapped_key: { type: 'string', minLength: 1, maxLength: 1024, description: 'The content key wrapped with RSA-OAEP, base64url.' },
      ciphertext: { type: 'string', minLength: 1, maxLength: MAX_SEALED_CIPHERTEXT_CHARS, description: 'base64url.' },
      signature: { type: 'string', maxLength: 256, description: 'Ed25519 signature by header.signer_key, base64url.' },
    },
  },
  {
    $id: 'Digest',
    type: 'object',
    description: 'A digest request and what became of it.',
    required: ['request_id', 'status', 'failure_reason', 'device_id', 'chat_ids', 'results', 'requested_at', 'completed_at', 'expires_at', 'method'],
    properties: {
      request_id: { type: 'string' },
      status: { type: 'string', enum: ['pending', 'ready', 'failed', 'expired'] },
      failure_reason: {
        type: 'string',
        description: 'Why it failed (status failed only), e.g. summarizer_unavailable, timeout, undecryptable, digests_disabled; empty otherwise.',
      },
      device_id: { type: 'string', description: 'The device the results are sealed to.' },
      chat_ids: { type: 'array', items: { type: 'string' } },
      results: {
        type: 'array',
        description: 'One sealed summary per chat (status ready only): kind "digest-result", context "<request_id>:<chat_id>:<device_id>", signed by the service identity key.',
        items: { type: 'object', required: ['chat_id', 'sealed'], properties: { chat_id: { type: 'string' }, sealed: ref('SealedBox') } },
      },
      requested_at: { type: 'string', description: 'RFC 3339.' },
      completed_at: { type: 'string', description: 'RFC 3339; empty while pending.' },
      expires_at: { type: 'string', description: 'When the results are (or were) deleted, RFC 3339.' },
      method: { type: 'string', description: '"llm" or "extractive" once ready.' },
    },
  },
  {
    $id: 'DigestConsent',
    type: 'object',
    description:
      "A member's signed digest consent (docs/protocol.md, \"Digest consent\"): Ed25519 by one of the member's devices over the canonical JSON of `payload`. `include: false` asks that the member's messages be left out of every digest of the chat; the highest `version` counts.",
    additionalProperties: false,
    required: ['payload', 'signature'],
    properties: {
      payload: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'chat_id', 'user_id', 'device_id', 'include', 'version', 'created_at'],
        properties: {
          type: { type: 'string', enum: ['bil.digest-consent.v1'] },
          chat_id: uuid('The chat.'),
          user_id: uuid('The member.'),
          device_id: uuid('The device that signed.'),
          include: { type: 'boolean', description: "false: leave this member's messages out of digests." },
          version: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'Strictly increasing per chat and member (clients use their clock, ms).' },
          created_at: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'ms since the Unix epoch.' },
        },
      },
      signature: { type: 'string', minLength: 1, maxLength: 128, description: 'Ed25519 signature, base64url.' },
    },
  },
  {
    $id: 'DigestPolicy',
    type: 'object',
    description: "A chat's digest policy as the caller sees it.",
    required: ['chat_id', 'enabled', 'disabled_by_me', 'disabled_by_count', 'consents'],
    properties: {
      chat_id: { type: 'string' },
      enabled: { type: 'boolean', description: 'True when no current member has switched digests off.' },
      disabled_by_me: { type: 'boolean' },
      disabled_by_count: { type: 'integer' },
      consents: {
        type: 'array',
        description: "The newest signed consent of each current member who sent one. Verify each against the member's devices and pin the highest version per member; never trust a missing or lower one.",
        items: ref('DigestConsent'),
      },
    },
  },
] as const;

type DigestSharedId = 'SealedBox' | 'Digest' | 'DigestConsent' | 'DigestPolicy';
/** The JSON type of a digest route schema part: a $ref may name the digest shared schemas above as well as @bil/proto/rest's. */
type FromDigestSchema<S> = FromSchema<S, (typeof digestSharedSchemas)[number]>;
/** A sealed box as the API carries it. */
export type SealedBoxJson = FromDigestSchema<{ $ref: 'SealedBox#' }>;

const bodyErrors = [400, 413, 415];

export const digestKeySchema = {
  tags: ['digests'],
  summary: "The digest service's current signed encryption key and the client-side limits.",
  description: 'Verify `key.signed_key` with the service identity key the client is configured with; never trust `service_identity_key` from here.',
  security: BEARER,
  response: {
    200: {
      type: 'object',
      required: ['key', 'service_identity_key', 'min_unread_messages', 'max_chats_per_request', 'max_transcript_bytes', 'model_configured'],
      properties: {
        key: {
          type: 'object',
          required: ['key_id', 'signed_key', 'issued_at', 'expires_at'],
          properties: {
            key_id: { type: 'string' },
            signed_key: { type: 'object', additionalProperties: true, description: 'SignedServiceKey {payload, signature} (docs/protocol.md).' },
            issued_at: { type: 'integer', description: 'ms since the Unix epoch.' },
            expires_at: { type: 'integer', description: 'ms since the Unix epoch.' },
          },
        },
        service_identity_key: { type: 'string', description: 'For operators only.' },
        min_unread_messages: { type: 'integer', description: "The server's suggested unread threshold: advisory, clients use their own setting." },
        max_chats_per_request: { type: 'integer' },
        max_transcript_bytes: { type: 'integer' },
        model_configured: { type: 'boolean' },
      },
    },
    ...errors(401),
  },
} as const;

export type RequestDigestBody = FromDigestSchema<typeof requestDigestSchema.body>;
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

export type DigestParams = FromDigestSchema<typeof getDigestSchema.params>;
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

export type PolicyParams = FromDigestSchema<typeof getDigestPolicySchema.params>;
export const getDigestPolicySchema = {
  tags: ['digests'],
  summary: "A chat's digest policy and the unread threshold.",
  security: BEARER,
  params: policyParams,
  response: { 200: policyResponse, ...errors(400, 401, 404) },
} as const;

export type PolicyBody = FromDigestSchema<typeof setDigestPolicySchema.body>;
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

export type ConsentBody = FromDigestSchema<typeof setDigestConsentSchema.body>;
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
