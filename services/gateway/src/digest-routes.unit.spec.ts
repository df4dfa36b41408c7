// The digest routes against a stubbed digest service: request mapping (actor,
// sealed boxes as JSON text, enums), answers, strict validation before any
// RPC, the body limit, 503 without a digest service, and the OpenAPI document.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { AppError, createLogger } from '@bil/runtime';
import { buildApp, type AppDeps } from './app.js';
import type { ChatApi } from './chat-client.js';
import type { DigestApi } from './digest-client.js';
import type { VerifiedActor } from './auth.js';
import type { IdentityApi } from './identity-client.js';

const ACTOR: VerifiedActor = {
  userId: '0193a0c4-1111-7000-8000-000000000001',
  deviceId: '0193a0c4-2222-7000-8000-000000000002',
  sessionId: 's1',
  expiresAt: Date.now() + 3_600_000,
};
const ACTOR_MSG = { userId: ACTOR.userId, deviceId: ACTOR.deviceId, sessionId: ACTOR.sessionId };
const CHAT_ID = '0193a0c4-3333-7000-8000-000000000003';
const REQ_ID = '0193a0c4-5555-7000-8000-000000000005';
const BOX = {
  header: { v: 1, type: 'bil.sealed.v1', kind: 'digest-request', context: `${CHAT_ID}:${ACTOR.deviceId}`, key_id: 'k', created_at: 1 },
  wrapped_key: 'w',
  ciphertext: 'c',
  signature: 's',
};
const DIGEST = {
  requestId: REQ_ID,
  status: 'DIGEST_STATUS_READY' as const,
  failureReason: 'DIGEST_FAILURE_REASON_UNSPECIFIED' as const,
  deviceId: ACTOR.deviceId,
  chatIds: [CHAT_ID],
  results: [{ chatId: CHAT_ID, sealed: JSON.stringify(BOX) }],
  requestedAt: 'a',
  completedAt: 'b',
  expiresAt: 'c',
  method: 'extractive',
};
const CONSENT = {
  payload: { type: 'bil.digest-consent.v1', chat_id: CHAT_ID, user_id: ACTOR.userId, device_id: ACTOR.deviceId, include: false, version: 1764100000000, created_at: 1764100000000 },
  signature: 's'.repeat(86),
};
const POLICY = { chatId: CHAT_ID, enabled: false, disabledByMe: true, disabledByCount: 1, consents: [JSON.stringify(CONSENT)] };
const POLICY_JSON = { chat_id: CHAT_ID, enabled: false, disabled_by_me: true, disabled_by_count: 1, consents: [CONSENT] };

function stubDigest(): DigestApi {
  return {
    getDigestKey: vi.fn(async () => ({
      key: { keyId: 'k', signedKey: JSON.stringify({ payload: { key_id: 'k' }, signature: 's' }), issuedAt: '1', expiresAt: '2' },
      serviceIdentityKey: 'id',
      minUnreadMessages: 20,
      maxChatsPerRequest: 20,
      maxTranscriptBytes: 262144,
      modelConfigured: false,
    })),
    getDigestPolicy: vi.fn(async () => ({ policies: [POLICY], minUnreadMessages: 20 })),
    setDigestPolicy: vi.fn(async () => ({ policy: POLICY })),
    setDigestConsent: vi.fn(async (req: { consent: string }) => ({ consent: req.consent })),
    requestDigest: vi.fn(async () => ({ digest: { ...DIGEST, status: 'DIGEST_STATUS_PENDING' as const, results: [] }, created: true })),
    getDigest: vi.fn(async () => ({ digest: DIGEST })),
    checkHealth: async () => undefined,
    close: () => undefined,
  };
}

async function app(digest: DigestApi | undefined): Promise<FastifyInstance> {
  const deps: AppDeps = {
    logger: createLogger('gateway-test', 'silent'),
    identity: {} as IdentityApi,
    chat: {} as ChatApi,
    verifier: {
      verify: async (token) => {
        if (token === 'good') return ACTOR;
        throw new AppError('unauthenticated', 'invalid_token', 'the access token is invalid');
      },
    },
    limiter: { hit: async () => ({ allowed: true, retryAfterSeconds: 0 }) },
    limits: { perIp: 1, perUsername: 1 },
    ready: async () => ({ redis: 'ok' }),
    bodyLimitBytes: 4 * 1024,
    bodyLimits: { message: 8 * 1024, epoch: 8 * 1024, digest: 16 * 1024 },
    trustProxyHops: 0,
    ...(digest ? { digest } : {}),
  };
  return buildApp(deps);
}

describe('digest routes (stubbed digest service)', () => {
  let gw: FastifyInstance;
  let digest: DigestApi;
  const headers = { authorization: 'Bearer good' };

  beforeAll(async () => {
    digest = stubDigest();
    gw = await app(digest);
  });
  afterAll(() => gw.close());
  beforeEach(() => vi.clearAllMocks());

  it('serves the key with the signed key as an object', async () => {
    const res = await gw.inject({ method: 'GET', url: '/v1/digest/key', headers });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      key: { key_id: 'k', signed_key: { payload: { key_id: 'k' }, signature: 's' }, issued_at: 1, expires_at: 2 },
      service_identity_key: 'id',
      min_unread_messages: 20,
      max_chats_per_request: 20,
      max_transcript_bytes: 262144,
      model_configured: false,
    });
    expect((await gw.inject({ method: 'GET', url: '/v1/digest/key' })).statusCode).toBe(401);
  });

  it('passes a digest request with the sealed boxes as JSON text; 201 when created', async () => {
    const res = await gw.inject({ method: 'POST', url: '/v1/digests', headers, payload: { request_id: REQ_ID, transcripts: [{ chat_id: CHAT_ID, sealed: BOX, message_count: 30 }] } });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ created: true, digest: { request_id: REQ_ID, status: 'pending', failure_reason: '', results: [] } });
    expect(digest.requestDigest).toHaveBeenCalledWith({ actor: ACTOR_MSG, requestId: REQ_ID, transcripts: [{ chatId: CHAT_ID, sealed: JSON.stringify(BOX), messageCount: 30 }] });
  });

  it('refuses malformed requests before any RPC, and bodies over the digest limit', async () => {
    for (const payload of [
      { request_id: 'nope', transcripts: [{ chat_id: CHAT_ID, sealed: BOX }] },
      { request_id: REQ_ID, transcripts: [] },
      { request_id: REQ_ID, transcripts: [{ chat_id: CHAT_ID, sealed: { ...BOX, extra: 1 } }] },
      { request_id: REQ_ID, transcripts: [{ chat_id: CHAT_ID, sealed: BOX }], more: true },
      { request_id: REQ_ID, transcripts: [{ chat_id: CHAT_ID, sealed: { ...BOX, signature: 's'.repeat(300) } }] },
    ]) {
      const res = await gw.inject({ method: 'POST', url: '/v1/digests', headers, payload });
      expect(res.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
    }
    const big = { request_id: REQ_ID, transcripts: [{ chat_id: CHAT_ID, sealed: { ...BOX, ciphertext: 'c'.repeat(20 * 1024) } }] };
    expect((await gw.inject({ method: 'POST', url: '/v1/digests', headers, payload: big })).statusCode).toBe(413);
    expect(digest.requestDigest).not.toHaveBeenCalled();
  });

  it('returns a ready digest with its sealed results as objects', async () => {
    const res = await gw.inject({ method: 'GET', url: `/v1/digests/${REQ_ID}`, headers });
    expect(res.json()).toEqual({
      digest: {
        request_id: REQ_ID,
        status: 'ready',
        failure_reason: '',
        device_id: ACTOR.deviceId,
        chat_ids: [CHAT_ID],
        results: [{ chat_id: CHAT_ID, sealed: BOX }],
        requested_at: 'a',
        completed_at: 'b',
        expires_at: 'c',
        method: 'extractive',
      },
    });
    expect(digest.getDigest).toHaveBeenCalledWith({ actor: ACTOR_MSG, requestId: REQ_ID });
    expect((await gw.inject({ method: 'GET', url: '/v1/digests/x', headers })).statusCode).toBe(400);
  });

  it('sets and reads the per-chat policy', async () => {
    let res = await gw.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/digest-policy`, headers, payload: { enabled: false } });
    expect(res.json()).toEqual({ policy: POLICY_JSON });
    expect(digest.setDigestPolicy).toHaveBeenCalledWith({ actor: ACTOR_MSG, chatId: CHAT_ID, enabled: false });
    res = await gw.inject({ method: 'GET', url: `/v1/chats/${CHAT_ID}/digest-policy`, headers });
    expect(res.json()).toEqual({ policy: POLICY_JSON, min_unread_messages: 20 });
    res = await gw.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/digest-policy`, headers, payload: { enabled: 'no' } });
    expect(res.statusCode).toBe(400);
  });

  it('passes a signed consent as JSON text and answers it as an object', async () => {
    const res = await gw.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/digest-consent`, headers, payload: { consent: CONSENT } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ consent: CONSENT });
    expect(digest.setDigestConsent).toHaveBeenCalledWith({ actor: ACTOR_MSG, chatId: CHAT_ID, consent: JSON.stringify(CONSENT) });
    expect((await gw.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/digest-consent`, payload: { consent: CONSENT } })).statusCode).toBe(401);
  });

  it('refuses malformed consents before any RPC, and oversized bodies', async () => {
    const p = CONSENT.payload;
    for (const payload of [
      {},
      { consent: CONSENT, more: 1 },
      { consent: { ...CONSENT, extra: 1 } },
      { consent: { payload: { ...p, type: 'other' }, signature: CONSENT.signature } },
      { consent: { payload: { ...p, include: 'no' }, signature: CONSENT.signature } },
      { consent: { payload: { ...p, chat_id: 'x' }, signature: CONSENT.signature } },
      { consent: { payload: { ...p, version: -1 }, signature: CONSENT.signature } },
      { consent: { payload: { ...p, extra: 1 }, signature: CONSENT.signature } },
      { consent: { payload: p, signature: 's'.repeat(200) } },
    ]) {
      const res = await gw.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/digest-consent`, headers, payload });
      expect(res.statusCode, JSON.stringify(payload).slice(0, 100)).toBe(400);
    }
    expect((await gw.inject({ method: 'PUT', url: '/v1/chats/x/digest-consent', headers, payload: { consent: CONSENT } })).statusCode).toBe(400);
    const big = JSON.stringify({ consent: CONSENT, pad: 'x'.repeat(5000) });
    expect((await gw.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/digest-consent`, headers: { ...headers, 'content-type': 'application/json' }, payload: big })).statusCode).toBe(413);
    expect(digest.setDigestConsent).not.toHaveBeenCalled();
  });

  it('maps the digest service refusals of a consent (409 consent_stale, 400 invalid_consent)', async () => {
    vi.mocked(digest.setDigestConsent).mockRejectedValueOnce(new AppError('failed_precondition', 'consent_stale', 'stale', { stored_version: 2 }));
    let res = await gw.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/digest-consent`, headers, payload: { consent: CONSENT } });
    expect([res.statusCode, res.json().error.code]).toEqual([409, 'consent_stale']);
    vi.mocked(digest.setDigestConsent).mockRejectedValueOnce(new AppError('invalid_argument', 'invalid_consent', 'bad'));
    res = await gw.inject({ method: 'PUT', url: `/v1/chats/${CHAT_ID}/digest-consent`, headers, payload: { consent: CONSENT } });
    expect(res.statusCode).toBe(400);
  });

  it('documents the digest routes in the OpenAPI document', async () => {
    const doc = (await gw.inject({ method: 'GET', url: '/v1/openapi.json' })).json();
    expect(Object.keys(doc.paths['/v1/digests'])).toEqual(['post']);
    expect(doc.paths['/v1/digests/{request_id}'].get).toBeDefined();
    expect(doc.paths['/v1/digest/key'].get).toBeDefined();
    expect(Object.keys(doc.paths['/v1/chats/{chat_id}/digest-policy']).sort()).toEqual(['get', 'put']);
    expect(doc.components.schemas.SealedBox).toBeDefined();
    expect(Object.keys(doc.paths['/v1/chats/{chat_id}/digest-consent'])).toEqual(['put']);
    expect(doc.components.schemas.DigestConsent).toBeDefined();
    expect(doc.components.schemas.DigestPolicy.properties.consents).toBeDefined();
  });

  it('answers 503 without a digest service', async () => {
    const bare = await app(undefined);
    const res = await bare.inject({ method: 'GET', url: '/v1/digest/key', headers });
    expect(res.statusCode).toBe(503);
    await bare.close();
  });
});
