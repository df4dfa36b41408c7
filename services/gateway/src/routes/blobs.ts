// /v1/blobs: encrypted attachments' ciphertext, each route mapped to
// BlobService RPCs with the verified actor. Bytes are streamed both ways in
// pieces of at most MAX_BLOB_CHUNK_BYTES (one AppendBlob or ReadBlob each),
// never buffered whole: the upload route is the one route whose body is not
// JSON and not bounded by the gateway's body limits (the chat service bounds
// it by the blob's declared size).
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '@bil/runtime';
import { MAX_BLOB_CHUNK_BYTES } from '@bil/proto/limits';
import type { BlobApi, BlobStatus } from '../blob-client.js';
import { int64ToNumber } from '../mappers.js';
import {
  appendBlobSchema,
  commitUploadSchema,
  createBlobSchema,
  presignDownloadSchema,
  presignUploadSchema,
  type DirectPartBody,
  getBlobSchema,
  readBlobSchema,
  type AppendBlobQuery,
  type BlobParams,
  type CreateBlobBody,
} from '../blob-schemas.js';
import { actorOf, inContext, type RouteContext } from './context.js';

export interface BlobStatusJson {
  blob_id: string;
  size: number;
  received: number;
  complete: boolean;
  created_at: string;
  direct_transfer: boolean;
}

function statusJson(b: BlobStatus | null): BlobStatusJson {
  if (!b) throw new AppError('internal', 'internal', 'chat returned no blob');
  return { blob_id: b.blobId, size: int64ToNumber(b.size), received: int64ToNumber(b.received), complete: b.complete, created_at: b.createdAt, direct_transfer: b.directTransfer };
}

const OFFSET = /^(0|[1-9]\d{0,15})$/;

export function blobRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const auth = { onRequest: ctx.authenticate };
  const blob = (): BlobApi => {
    if (!ctx.blob) throw new AppError('unavailable', 'service_unavailable', 'the blob service is not configured');
    return ctx.blob;
  };

  app.post<{ Body: CreateBlobBody }>('/v1/blobs', { schema: createBlobSchema, ...auth }, async (request, reply) => {
    const res = await inContext(request, () => blob().createBlob({ actor: actorOf(request), size: String(request.body.size) }));
    return reply.code(201).send(statusJson(res.blob));
  });

  app.get<{ Params: BlobParams }>('/v1/blobs/:blob_id', { schema: getBlobSchema, ...auth }, async (request) => {
    const res = await inContext(request, () => blob().getBlob({ actor: actorOf(request), blobId: request.params.blob_id }));
    return statusJson(res.blob);
  });

  // Presigned transfers: the bytes go to and from object storage directly.
  app.post<{ Params: BlobParams; Body: DirectPartBody }>('/v1/blobs/:blob_id/upload-url', { schema: presignUploadSchema, ...auth }, async (request) => {
    const { offset, length } = request.body;
    const res = await inContext(request, () =>
      blob().presignUpload({ actor: actorOf(request), blobId: request.params.blob_id, offset: String(offset), length: String(length) }),
    );
    return { url: res.url, method: 'PUT', expires_at: res.expiresAt };
  });

  app.post<{ Params: BlobParams; Body: DirectPartBody }>('/v1/blobs/:blob_id/uploaded', { schema: commitUploadSchema, ...auth }, async (request) => {
    const { offset, length } = request.body;
    const res = await inContext(request, () =>
      blob().commitUpload({ actor: actorOf(request), blobId: request.params.blob_id, offset: String(offset), length: String(length) }),
    );
    return statusJson(res.blob);
  });

  app.get<{ Params: BlobParams }>('/v1/blobs/:blob_id/download-urls', { schema: presignDownloadSchema, ...auth }, async (request) => {
    const res = await inContext(request, () => blob().presignDownload({ actor: actorOf(request), blobId: request.params.blob_id }));
    return {
      parts: res.parts.map((p) => ({ offset: int64ToNumber(p.offset), length: int64ToNumber(p.length), url: p.url })),
      expires_at: res.expiresAt,
    };
  });

  app.get<{ Params: BlobParams }>('/v1/blobs/:blob_id/content', { schema: readBlobSchema, ...auth }, async (request, reply) => {
    const actor = actorOf(request);
    const blobId = request.params.blob_id;
    const first = await inContext(request, () => blob().readBlob({ actor, blobId, offset: '0', maxBytes: MAX_BLOB_CHUNK_BYTES }));
    const size = int64ToNumber(first.size);
    const read = (offset: number) => inContext(request, () => blob().readBlob({ actor, blobId, offset: String(offset), maxBytes: MAX_BLOB_CHUNK_BYTES }));
    // One read ahead: the next MiB is fetched while the previous one goes out.
    const pieces = async function* (): AsyncGenerator<Buffer> {
      let at = first.data.length;
      let next = at < size ? read(at) : undefined;
      next?.catch(() => undefined); // awaited below; a client gone first leaves it unobserved
      yield first.data;
      while (next) {
        const r = await next;
        if (r.data.length === 0) throw new Error('blob ended early');
        at += r.data.length;
        next = at < size ? read(at) : undefined;
        next?.catch(() => undefined);
        yield r.data;
      }
    };
    return reply.code(200).type('application/octet-stream').header('content-length', size).header('cache-control', 'no-store').send(Readable.from(pieces()));
  });

  // The raw upload: its own scope, so the octet-stream parser (which leaves
  // the body unread for the handler to stream) applies to this route only.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/octet-stream', (_request, _payload, done) => done(null, undefined));
    scope.put<{ Params: BlobParams; Querystring: AppendBlobQuery }>(
      '/v1/blobs/:blob_id/content',
      {
        schema: appendBlobSchema,
        ...auth,
        preValidation: async (request: FastifyRequest) => {
          const q = request.query as Record<string, unknown>;
          if (typeof q.offset === 'string' && OFFSET.test(q.offset)) q.offset = Number(q.offset);
        },
      },
      async (request) => {
        const actor = actorOf(request);
        const blobId = request.params.blob_id;
        let offset = request.query.offset;
        let last: BlobStatus | null = null;
        const send = async (data: Buffer) => {
          const r = await inContext(request, () => blob().appendBlob({ actor, blobId, offset: String(offset), data }));
          offset += data.length;
          last = r.blob;
        };
        let held: Buffer[] = [];
        let heldBytes = 0;
        const flush = async (all: boolean) => {
          while (heldBytes >= MAX_BLOB_CHUNK_BYTES || (all && heldBytes > 0)) {
            const joined = Buffer.concat(held, heldBytes);
            const piece = joined.subarray(0, Math.min(MAX_BLOB_CHUNK_BYTES, joined.length));
            const rest = joined.subarray(piece.length);
            held = rest.length > 0 ? [rest] : [];
            heldBytes = rest.length;
            await send(piece);
          }
        };
        try {
          for await (const part of request.raw as AsyncIterable<Buffer>) {
            held.push(part);
            heldBytes += part.length;
            await flush(false);
          }
        } catch (err) {
          // The client went away mid-body: keep what arrived, so the upload resumes from there.
          await flush(true).catch(() => undefined);
          throw err;
        }
        await flush(true);
        if (!last) {
          last = (await inContext(request, () => blob().getBlob({ actor, blobId }))).blob;
        }
        return statusJson(last);
      },
    );
  });
}
