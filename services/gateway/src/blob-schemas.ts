// JSON schemas of the /v1/blobs routes (encrypted attachments, docs/api.md
// "Blobs"). The bytes themselves are application/octet-stream bodies and
// answers, streamed: only the JSON parts are described here.
import type { FromSchema } from '@bil/proto/rest';
import { MAX_BLOB_BYTES, MAX_DIRECT_PART_BYTES } from '@bil/proto/limits';
import { BEARER, errors } from './schemas.js';

export const blobStatusSchema = {
  $id: 'BlobStatus',
  type: 'object',
  additionalProperties: false,
  required: ['blob_id', 'size', 'received', 'complete', 'created_at'],
  properties: {
    blob_id: { type: 'string', format: 'uuid' },
    size: { type: 'integer', description: 'Declared ciphertext size in bytes.' },
    received: { type: 'integer', description: 'Bytes received so far: the offset to upload from.' },
    complete: { type: 'boolean', description: 'True once all `size` bytes arrived; only then can a message reference it.' },
    created_at: { type: 'string', format: 'date-time' },
    direct_transfer: {
      type: 'boolean',
      description: 'True when the bytes live in object storage the client may reach itself with presigned URLs (upload-url, uploaded, download-urls).',
    },
  },
} as const;

export const blobSharedSchemas = [blobStatusSchema];

const blobParams = {
  type: 'object',
  additionalProperties: false,
  required: ['blob_id'],
  properties: { blob_id: { type: 'string', format: 'uuid', maxLength: 36, description: 'The blob.' } },
} as const;
export type BlobParams = FromSchema<typeof blobParams>;

const status = { $ref: 'BlobStatus#' } as const;

export type CreateBlobBody = FromSchema<typeof createBlobSchema.body>;
export const createBlobSchema = {
  tags: ['blobs'],
  summary: "Start an upload of an attachment's ciphertext (docs/protocol.md \"Attachments\").",
  description: `\`size\` is the ciphertext size, at most ${MAX_BLOB_BYTES} bytes; 409 \`quota_exceeded\` past the caller's quota.`,
  security: BEARER,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['size'],
    properties: { size: { type: 'integer', minimum: 1, maximum: MAX_BLOB_BYTES } },
  },
  response: { 201: { ...status, description: 'Created; nothing received yet.' }, ...errors(400, 401, 403, 409, 413, 415) },
} as const;

export type AppendBlobQuery = FromSchema<typeof appendBlobSchema.querystring>;
export const appendBlobSchema = {
  tags: ['blobs'],
  summary: 'Upload bytes of the ciphertext from `offset` (= `received`): an application/octet-stream body, streamed.',
  description:
    'An interrupted upload keeps what arrived: `GET /v1/blobs/{blob_id}` gives `received`, the offset to continue from. ' +
    '409 `offset_mismatch` (with `details.received`) when `offset` is not where the upload stands.',
  security: BEARER,
  params: blobParams,
  querystring: {
    type: 'object',
    additionalProperties: false,
    required: ['offset'],
    properties: { offset: { type: 'integer', minimum: 0, maximum: MAX_BLOB_BYTES } },
  },
  response: { 200: { ...status, description: 'The state after the bytes were stored.' }, ...errors(400, 401, 403, 404, 409, 413, 415) },
} as const;

export const getBlobSchema = {
  tags: ['blobs'],
  summary: "A blob's upload state, for its uploader or a member of a chat whose message references it.",
  security: BEARER,
  params: blobParams,
  response: { 200: status, ...errors(400, 401, 403, 404) },
} as const;

export const readBlobSchema = {
  tags: ['blobs'],
  summary: "Download a completed blob's ciphertext (application/octet-stream, streamed).",
  security: BEARER,
  params: blobParams,
  response: { ...errors(400, 401, 403, 404, 409) },
} as const;

// --- presigned transfers (object storage only; 409 `direct_transfer_unavailable` otherwise) ---

const directPart = {
  type: 'object',
  additionalProperties: false,
  required: ['offset', 'length'],
  properties: {
    offset: { type: 'integer', minimum: 0, maximum: MAX_BLOB_BYTES, description: 'Where the bytes start: `received`.' },
    length: { type: 'integer', minimum: 1, maximum: MAX_DIRECT_PART_BYTES, description: `How many bytes, at most ${MAX_DIRECT_PART_BYTES}.` },
  },
} as const;
export type DirectPartBody = FromSchema<typeof directPart>;

export const presignUploadSchema = {
  tags: ['blobs'],
  summary: 'A presigned URL to PUT the next `length` bytes of the ciphertext straight to object storage.',
  description:
    'PUT exactly `length` bytes to `url` (Content-Length must match), then `POST /v1/blobs/{blob_id}/uploaded` with the same offset and length. ' +
    '409 `direct_transfer_unavailable` when the server keeps blobs in its database (upload through `PUT /v1/blobs/{blob_id}/content`).',
  security: BEARER,
  params: blobParams,
  body: directPart,
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'method', 'expires_at'],
      properties: { url: { type: 'string' }, method: { type: 'string', enum: ['PUT'] }, expires_at: { type: 'string', format: 'date-time' } },
    },
    ...errors(400, 401, 403, 404, 409, 413),
  },
} as const;

export const commitUploadSchema = {
  tags: ['blobs'],
  summary: 'Count bytes PUT to a presigned URL: object storage must hold exactly `length` bytes at `offset` (409 `upload_incomplete` otherwise).',
  security: BEARER,
  params: blobParams,
  body: directPart,
  response: { 200: { ...status, description: 'The state after the bytes were counted.' }, ...errors(400, 401, 403, 404, 409, 413) },
} as const;

export const presignDownloadSchema = {
  tags: ['blobs'],
  summary: "Presigned URLs to GET a completed blob's ciphertext straight from object storage, range by range, in order.",
  security: BEARER,
  params: blobParams,
  response: {
    200: {
      type: 'object',
      additionalProperties: false,
      required: ['parts', 'expires_at'],
      properties: {
        parts: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['offset', 'length', 'url'],
            properties: { offset: { type: 'integer' }, length: { type: 'integer' }, url: { type: 'string' } },
          },
        },
        expires_at: { type: 'string', format: 'date-time' },
      },
    },
    ...errors(400, 401, 403, 404, 409),
  },
} as const;
