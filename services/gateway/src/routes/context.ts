// What route modules need from the app: the identity and chat clients, the
// auth hook, the sign-in rate limits and the larger body limits of chat routes.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { withCorrelationId } from '@bil/runtime';
import type { ChatApi } from '../chat-client.js';
import type { BlobApi } from '../blob-client.js';
import type { DigestApi } from '../digest-client.js';
import type { IdentityApi } from '../identity-client.js';
import type { VerifiedActor } from '../auth.js';
import { enforceAuthLimit, type AuthLimits, type RateLimiter } from '../rate-limit.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on routes that require a bearer token. */
    actor: VerifiedActor | null;
  }
}

export interface RouteContext {
  identity: IdentityApi;
  chat: ChatApi;
  /** The chat service's BlobService; without it the blob routes answer 503. */
  blob?: BlobApi;
  /** The digest service; without it the digest routes answer 503. */
  digest?: DigestApi;
  /** Per-route body limits above the default: sending a message, and routes carrying epoch records. */
  bodyLimits: BodyLimits;
  /** onRequest hook: verifies the bearer token and sets request.actor. */
  authenticate: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  limiter: Pick<RateLimiter, 'hit'>;
  limits: AuthLimits;
  /** The VAPID public key (base64url) served at GET /v1/push/vapid-key; null: push is off (503 push_unavailable). */
  vapidPublicKey: string | null;
  /** Readiness of the gateway's dependencies; throws naming what is down. */
  ready: () => Promise<Record<string, 'ok' | 'down'>>;
}

export interface BodyLimits {
  /** POST /v1/chats/{chat_id}/messages: an envelope of up to 256 Ki base64url characters plus wrapped keys. */
  message: number;
  /** Routes carrying an epoch record and its wrapped keys (group creation, membership, epochs): they grow with the group. */
  epoch: number;
  /** POST /v1/digests: sealed transcripts, up to DIGEST_MAX_TRANSCRIPT_BYTES each. */
  digest: number;
}

/**
 * Starts the gRPC call(s) of `fn` with the request's correlation id. The id is
 * current only for fn's synchronous start, which is where callUnary reads it:
 * no per-request async context tracking (runtime context.ts says why).
 */
export function inContext<T>(request: FastifyRequest, fn: () => Promise<T>): Promise<T> {
  return withCorrelationId(request.id, fn);
}

/** The verified actor of an authenticated route, as identity's Actor message. */
export function actorOf(request: FastifyRequest): { userId: string; deviceId: string; sessionId: string } {
  const a = request.actor;
  if (!a) throw new Error('route requires authentication but no actor is set');
  return { userId: a.userId, deviceId: a.deviceId, sessionId: a.sessionId };
}

/** Counts a sign-in or registration attempt; throws 429 over the limit. */
export function limitAuthAttempt(ctx: RouteContext, request: FastifyRequest, username: string): Promise<void> {
  return enforceAuthLimit(ctx.limiter, ctx.limits, request.ip, username);
}
