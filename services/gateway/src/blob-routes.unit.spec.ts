// The /v1/blobs routes against a stub BlobService: bodies streamed into
// AppendBlob calls of at most 1 MiB at consecutive offsets (past the JSON
// body limit, on this route only), downloads streamed from ReadBlob calls.
// The real chat service behind them: packages/sdk/test/attachments.e2e.spec.ts.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { AppError, createLogger } from '@bil/runtime';
import { MAX_BLOB_BYTES, MAX_BLOB_CHUNK_BYTES } from '@bil/proto/limits';
import { buildApp } from './app.js';
import type { BlobApi } from './blob-client.js';
import type { ChatApi } from './chat-client.js';
import type { IdentityApi } from './identity-client.js';

const ACTOR = { userId: '0193a0c4-1111-7000-8000-000000000001', deviceId: '0193a0c4-2222-7000-8000-000000000002', sessionId: 's1', expiresAt: Date.now() + 3_600_000 };
const BLOB_ID = '0193a0c4-6666-7000-8000-000000000006';
const headers = { authorization: 'Bearer good' };

/** One blob kept in memory, with BlobService's offset rule. */
function stubBlobs(size: number): BlobApi & { stored: Buffer[] } {
  const stored: Buffer[] = [];
  const received = () => stored.reduce((n, b) => n + b.length, 0);
  const status = () => ({ blobId: BLOB_ID, size: String(size), received: String(received()), complete: received() === size, createdAt: '2026-12-05T00:00:00.000Z', directTransfer: false });
  return {
    stored,
    createBlob: vi.fn(async () => ({ blob: status() })),
    appendBlob: vi.fn(async (req) => {
      if (Number(req.offset) !== received()) throw new AppError('failed_precondition', 'offset_mismatch', 'the upload continues elsewhere', { received: received() });
      stored.push(Buffer.from(req.data as Buffer));
      return { blob: status() };
    }),
    getBlob: vi.fn(async () => ({ blob: status() })),
    readBlob: vi.fn(async (req) => {
      const all = Buffer.concat(stored);
      const at = Number(req.offset);
      return { data: all.subarray(at, at + Number(req.maxBytes)), size: String(all.length) };
    }),
    // The PostgreSQL backend has no presigned transfers.
    presignUpload: vi.fn(async () => {
      throw new AppError('failed_precondition', 'direct_transfer_unavailable', 'upload through the API');
    }),
    commitUpload: vi.fn(async () => {
      throw new AppError('failed_precondition', 'direct_transfer_unavailable', 'upload through the API');
    }),
    presignDownload: vi.fn(async () => {
      throw new AppError('failed_precondition', 'direct_transfer_unavailable', 'download through the API');
    }),
    close: () => undefined,
  };
}

describe('/v1/blobs', () => {
  let app: FastifyInstance;
  let blob: ReturnType<typeof stubBlobs>;
  const size = 2 * MAX_BLOB_CHUNK_BYTES + 12345;

  beforeAll(async () => {
    blob = stubBlobs(size);
    app = await buildApp({
      logger: createLogger('gateway-test', 'silent'),
      identity: {} as IdentityApi,
      chat: {} as ChatApi,
      blob,
      verifier: {
        verify: async (token) => {
          if (token === 'good') return ACTOR;
          throw new AppError('unauthenticated', 'invalid_token', 'the access token is invalid');
        },
      },
      limiter: { hit: async () => ({ allowed: true, retryAfterSeconds: 0 }) },
      limits: { perIp: 1, perUsername: 1 },
      ready: async () => ({ identity: 'ok', chat: 'ok', redis: 'ok' }),
      bodyLimitBytes: 4 * 1024,
      trustProxyHops: 0,
    });
  });
  afterAll(() => app.close());
  beforeEach(() => vi.clearAllMocks());

  it('creates a blob of a size up to the limit', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/blobs', headers, payload: { size } });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toEqual({ blob_id: BLOB_ID, size, received: 0, complete: false, created_at: '2026-12-05T00:00:00.000Z', direct_transfer: false });
    expect(blob.createBlob).toHaveBeenCalledWith({ actor: { userId: ACTOR.userId, deviceId: ACTOR.deviceId, sessionId: 's1' }, size: String(size) });
    const big = await app.inject({ method: 'POST', url: '/v1/blobs', headers, payload: { size: MAX_BLOB_BYTES + 1 } });
    expect(big.statusCode).toBe(400);
  });

  it('streams an upload far past the JSON body limit into appends of at most 1 MiB at consecutive offsets', async () => {
    const bytes = randomBytes(size);
    const first = await app.inject({ method: 'PUT', url: `/v1/blobs/${BLOB_ID}/content?offset=0`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: bytes.subarray(0, 1000) });
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({ received: 1000, complete: false });
    const rest = await app.inject({ method: 'PUT', url: `/v1/blobs/${BLOB_ID}/content?offset=1000`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: bytes.subarray(1000) });
    expect(rest.statusCode, rest.body).toBe(200);
    expect(rest.json()).toMatchObject({ received: size, complete: true });
    const calls = vi.mocked(blob.appendBlob).mock.calls.map(([r]) => ({ offset: Number(r.offset), n: (r.data as Buffer).length }));
    expect(calls.every((c) => c.n <= MAX_BLOB_CHUNK_BYTES)).toBe(true);
    let at = 0;
    for (const c of calls) {
      expect(c.offset).toBe(at);
      at += c.n;
    }
    expect(at).toBe(size);
    expect(Buffer.concat(blob.stored).equals(bytes)).toBe(true);

    // The download streams the same bytes back, with their length.
    const got = await app.inject({ method: 'GET', url: `/v1/blobs/${BLOB_ID}/content`, headers });
    expect(got.statusCode).toBe(200);
    expect(got.headers['content-type']).toBe('application/octet-stream');
    expect(Number(got.headers['content-length'])).toBe(size);
    expect(got.rawPayload.equals(bytes)).toBe(true);
    expect(vi.mocked(blob.readBlob).mock.calls.length).toBe(3);
  });

  it("answers the service's offset_mismatch, 415 for a body that is not octet-stream, 401 without a token", async () => {
    const wrong = await app.inject({ method: 'PUT', url: `/v1/blobs/${BLOB_ID}/content?offset=5`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: Buffer.from('x') });
    expect(wrong.statusCode).toBe(409);
    expect(wrong.json().error).toMatchObject({ code: 'offset_mismatch', details: { received: size } });
    const json = await app.inject({ method: 'PUT', url: `/v1/blobs/${BLOB_ID}/content?offset=0`, headers, payload: { a: 1 } });
    expect(json.statusCode).toBe(415);
    const anon = await app.inject({ method: 'GET', url: `/v1/blobs/${BLOB_ID}` });
    expect(anon.statusCode).toBe(401);
    const badOffset = await app.inject({ method: 'PUT', url: `/v1/blobs/${BLOB_ID}/content?offset=-1`, headers: { ...headers, 'content-type': 'application/octet-stream' }, payload: Buffer.from('x') });
    expect(badOffset.statusCode).toBe(400);
  });

  it('presigned transfers: 409 direct_transfer_unavailable from a database backend, and their bodies are validated', async () => {
    const url = await app.inject({ method: 'POST', url: `/v1/blobs/${BLOB_ID}/upload-url`, headers, payload: { offset: 0, length: 10 } });
    expect(url.statusCode).toBe(409);
    expect(url.json().error.code).toBe('direct_transfer_unavailable');
    const dl = await app.inject({ method: 'GET', url: `/v1/blobs/${BLOB_ID}/download-urls`, headers });
    expect(dl.json().error.code).toBe('direct_transfer_unavailable');
    const tooBig = await app.inject({ method: 'POST', url: `/v1/blobs/${BLOB_ID}/uploaded`, headers, payload: { offset: 0, length: 64 * 1024 * 1024 + 1 } });
    expect(tooBig.statusCode).toBe(400);
    const extra = await app.inject({ method: 'POST', url: `/v1/blobs/${BLOB_ID}/upload-url`, headers, payload: { offset: 0, length: 1, url: 'x' } });
    expect(extra.statusCode).toBe(400);
    const status = await app.inject({ method: 'GET', url: `/v1/blobs/${BLOB_ID}`, headers });
    expect(status.json().direct_transfer).toBe(false);
  });
});
