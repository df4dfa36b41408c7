// The gateway's view of the chat service's BlobService (attachment
// ciphertext): one typed async method per RPC, each with a deadline and the
// request's correlation id, on a channel of its own to the chat service.
import { credentials } from '@grpc/grpc-js';
import { callUnary, clientOptions, type ServiceAuth } from '@bil/runtime';
import { loadBlobProto } from '@bil/proto';
import { MAX_BLOB_CHUNK_BYTES } from '@bil/proto/limits';
import type { BlobServiceClient } from '@bil/proto/gen/bil/chat/v1/BlobService';
import type { CreateBlobRequest } from '@bil/proto/gen/bil/chat/v1/CreateBlobRequest';
import type { CreateBlobResponse__Output } from '@bil/proto/gen/bil/chat/v1/CreateBlobResponse';
import type { AppendBlobRequest } from '@bil/proto/gen/bil/chat/v1/AppendBlobRequest';
import type { AppendBlobResponse__Output } from '@bil/proto/gen/bil/chat/v1/AppendBlobResponse';
import type { GetBlobRequest } from '@bil/proto/gen/bil/chat/v1/GetBlobRequest';
import type { GetBlobResponse__Output } from '@bil/proto/gen/bil/chat/v1/GetBlobResponse';
import type { ReadBlobRequest } from '@bil/proto/gen/bil/chat/v1/ReadBlobRequest';
import type { ReadBlobResponse__Output } from '@bil/proto/gen/bil/chat/v1/ReadBlobResponse';
import type { PresignUploadRequest } from '@bil/proto/gen/bil/chat/v1/PresignUploadRequest';
import type { PresignUploadResponse__Output } from '@bil/proto/gen/bil/chat/v1/PresignUploadResponse';
import type { CommitUploadRequest } from '@bil/proto/gen/bil/chat/v1/CommitUploadRequest';
import type { CommitUploadResponse__Output } from '@bil/proto/gen/bil/chat/v1/CommitUploadResponse';
import type { PresignDownloadRequest } from '@bil/proto/gen/bil/chat/v1/PresignDownloadRequest';
import type { PresignDownloadResponse__Output } from '@bil/proto/gen/bil/chat/v1/PresignDownloadResponse';

export type { BlobStatus__Output as BlobStatus } from '@bil/proto/gen/bil/chat/v1/BlobStatus';

/** What the gateway asks of BlobService. */
export interface BlobApi {
  createBlob(req: CreateBlobRequest): Promise<CreateBlobResponse__Output>;
  appendBlob(req: AppendBlobRequest): Promise<AppendBlobResponse__Output>;
  getBlob(req: GetBlobRequest): Promise<GetBlobResponse__Output>;
  readBlob(req: ReadBlobRequest): Promise<ReadBlobResponse__Output>;
  presignUpload(req: PresignUploadRequest): Promise<PresignUploadResponse__Output>;
  commitUpload(req: CommitUploadRequest): Promise<CommitUploadResponse__Output>;
  presignDownload(req: PresignDownloadRequest): Promise<PresignDownloadResponse__Output>;
  close(): void;
}

/** Connects to the chat service's BlobService at `address` (host:port). */
export function createBlobClient(address: string, timeoutMs: number, auth: ServiceAuth): BlobApi {
  const proto = loadBlobProto();
  const maxBytes = MAX_BLOB_CHUNK_BYTES + 64 * 1024;
  const c: BlobServiceClient = new proto.bil.chat.v1.BlobService(
    address,
    credentials.createInsecure(),
    auth.clientOptions('chat', { ...clientOptions, 'grpc.max_receive_message_length': maxBytes, 'grpc.max_send_message_length': maxBytes }),
  );
  const settings = { timeoutMs };
  return {
    createBlob: (req) => callUnary(c, c.CreateBlob, req, settings),
    appendBlob: (req) => callUnary(c, c.AppendBlob, req, settings),
    getBlob: (req) => callUnary(c, c.GetBlob, req, settings),
    readBlob: (req) => callUnary(c, c.ReadBlob, req, settings),
    presignUpload: (req) => callUnary(c, c.PresignUpload, req, settings),
    commitUpload: (req) => callUnary(c, c.CommitUpload, req, settings),
    presignDownload: (req) => callUnary(c, c.PresignDownload, req, settings),
    close: () => c.close(),
  };
}
