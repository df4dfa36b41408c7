// The digest objects of the public REST API (docs/api.md "Digests",
// docs/digest.md): their shared schemas, which the gateway registers,
// validates and serialises with, and the JSON types derived from them, which
// the gateway's handlers build and the SDK reads. Pure, browser-safe
// (`@bil/proto/rest-digest`).
import { MAX_SEALED_CIPHERTEXT_CHARS } from './limits.js';
import type { SharedJson } from './rest.js';

const uuid = (description: string) => ({ type: 'string' as const, format: 'uuid', maxLength: 36, description });
const ref = <Id extends string>(id: Id) => ({ $ref: `${id}#` as const });

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
  {
    $id: 'DigestKey',
    description: "The digest service's current signed encryption key and the client-side limits (`GET /v1/digest/key`).",
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
] as const;

/** A sealed box as the API carries it. */
export type SealedBoxJson = SharedJson<'SealedBox'>;
/** A digest request and what became of it. */
export type DigestJson = SharedJson<'Digest'>;
export type DigestStatusJson = DigestJson['status'];
/** A member's signed digest consent. */
export type DigestConsentJson = SharedJson<'DigestConsent'>;
/** A chat's digest policy as the caller sees it. */
export type DigestPolicyJson = SharedJson<'DigestPolicy'>;
/** The digest service's signed key and the client-side limits. */
export type DigestKeyJson = SharedJson<'DigestKey'>;
