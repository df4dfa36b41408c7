// Loads the contracts at run time with the same options the types in gen/
// were generated with (scripts/generate.mjs): camelCase fields, 64-bit
// integers as strings, enums as strings, defaults filled in, virtual oneofs.
import { loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { ProtoGrpcType as IdentityProto } from '../gen/identity/identity_service.js';
import type { ProtoGrpcType as ChatProto } from '../gen/chat/chat_service.js';
import type { ProtoGrpcType as DigestProto } from '../gen/digest/digest_service.js';
import type { ProtoGrpcType as BlobProto } from '../gen/chat/blob_service.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Directory holding `bil/<context>/v1/*.proto` (from src/ or from dist/src/). */
export const protoRoot = existsSync(join(here, '..', 'bil')) ? join(here, '..') : join(here, '..', '..');

export const loaderOptions: Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [protoRoot],
};

function load<T>(file: string): T {
  return loadPackageDefinition(loadSync(file, loaderOptions)) as unknown as T;
}

/** The identity service's gRPC package (`bil.identity.v1`). */
export function loadIdentityProto(): IdentityProto {
  return load<IdentityProto>('bil/identity/v1/identity_service.proto');
}

/** The chat service's gRPC package (`bil.chat.v1`). */
export function loadChatProto(): ChatProto {
  return load<ChatProto>('bil/chat/v1/chat_service.proto');
}

/** The chat service's attachment storage (`bil.chat.v1.BlobService`, blob_service.proto). */
export function loadBlobProto(): BlobProto {
  return load<BlobProto>('bil/chat/v1/blob_service.proto');
}

/** The digest service's gRPC package (`bil.digest.v1`). */
export function loadDigestProto(): DigestProto {
  return load<DigestProto>('bil/digest/v1/digest_service.proto');
}

export type { IdentityProto, ChatProto, DigestProto, BlobProto };
