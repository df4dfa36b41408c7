// gRPC surface of BlobService (proto/bil/chat/v1/blob_service.proto): maps
// the messages to the blob use cases (app/blobs/blob-store.ts) and back.
import type { AsyncHandlers } from '@bil/runtime';
import type { BlobServiceHandlers } from '@bil/proto/gen/bil/chat/v1/BlobService';
import type { BlobStatus } from '@bil/proto/gen/bil/chat/v1/BlobStatus';
import type { BlobStore, BlobView } from '../app/blobs/blob-store.js';
import { actorOf } from './handlers.js';

export function blobHandlers(blobs: BlobStore): AsyncHandlers<BlobServiceHandlers> {
  const directTransfer = blobs.direct !== undefined;
  const statusMsg = (b: BlobView): BlobStatus => ({
    blobId: b.blobId,
    size: String(b.size),
    received: String(b.received),
    complete: b.complete,
    createdAt: b.createdAt,
    directTransfer,
  });
  return {
    CreateBlob: async (req) => ({ blob: statusMsg(await blobs.create(actorOf(req.actor), req.size)) }),
    AppendBlob: async (req) => ({
      blob: statusMsg(await blobs.append(actorOf(req.actor), { blobId: req.blobId, offset: req.offset, data: req.data })),
    }),
    GetBlob: async (req) => ({ blob: statusMsg(await blobs.status(actorOf(req.actor), req.blobId)) }),
    ReadBlob: async (req) => {
      const r = await blobs.read(actorOf(req.actor), { blobId: req.blobId, offset: req.offset, maxBytes: req.maxBytes });
      return { data: r.data, size: String(r.size) };
    },
    PresignUpload: async (req) => blobs.presignUpload(actorOf(req.actor), { blobId: req.blobId, offset: req.offset, length: req.length }),
    CommitUpload: async (req) => ({
      blob: statusMsg(await blobs.commitUpload(actorOf(req.actor), { blobId: req.blobId, offset: req.offset, length: req.length })),
    }),
    PresignDownload: async (req) => {
      const r = await blobs.presignDownload(actorOf(req.actor), req.blobId);
      return { parts: r.parts.map((p) => ({ offset: String(p.offset), length: String(p.length), url: p.url })), expiresAt: r.expiresAt };
    },
  };
}
