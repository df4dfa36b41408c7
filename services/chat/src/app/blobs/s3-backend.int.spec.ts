// The S3 blob backend against an S3-compatible server the test starts
// (s3rver through @bil/testkit), under the real BlobStore on PostgreSQL:
// appends through the service, presigned uploads and downloads a client makes
// itself, a rolled-back append's object overwritten by the retry, and the
// collector removing a blob's objects. The default backend refuses presigned
// transfers with a stable code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { startTestS3, type TestS3 } from '@bil/testkit';
import type { Database } from '@bil/runtime';
import { actorOf, openChatDb, seedDirectory } from '../../test-support.js';
import { BlobStore } from './blob-store.js';
import { collectBlobs } from './collector.js';
import { PostgresBlobBackend } from './postgres-backend.js';
import { S3BlobBackend } from './s3-backend.js';

let t: Awaited<ReturnType<typeof openChatDb>>;
let db: Database;
let s3server: TestS3;
let s3: S3Client;
let backend: S3BlobBackend;
let store: BlobStore;

beforeAll(async () => {
  [t, s3server] = await Promise.all([openChatDb('chats3', 4), startTestS3()]);
  db = t.db;
  s3 = new S3Client({
    endpoint: s3server.endpoint,
    region: s3server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3server.accessKeyId, secretAccessKey: s3server.secretAccessKey },
  });
  backend = new S3BlobBackend(s3, { bucket: s3server.bucket, prefix: 'blobs/', presignSeconds: 300 });
  store = new BlobStore(db, backend, { quotaBytes: 1 << 30 });
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await Promise.all([t?.close(), s3server?.stop()]);
});

async function objectKeys(blobId: string): Promise<string[]> {
  const page = await s3.send(new ListObjectsV2Command({ Bucket: s3server.bucket, Prefix: `blobs/${blobId}/` }));
  return (page.Contents ?? []).map((o) => o.Key!);
}

async function readAll(actor: ReturnType<typeof actorOf>, blobId: string, size: number, step: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < size; ) {
    const r = await store.read(actor, { blobId, offset: at, maxBytes: step });
    parts.push(r.data);
    at += r.data.length;
  }
  return Buffer.concat(parts);
}

describe('S3 blob backend', () => {
  it('stores appends as objects and reads any range back across them', async () => {
    const [u] = await seedDirectory(db, 1);
    const owner = actorOf(u!.devices[0]!);
    const bytes = randomBytes(300_000);
    const blob = await store.create(owner, bytes.length);
    for (const [from, to] of [[0, 100_000], [100_000, 250_000], [250_000, 300_000]] as const) {
      await store.append(owner, { blobId: blob.blobId, offset: from, data: bytes.subarray(from, to) });
    }
    expect((await store.status(owner, blob.blobId)).complete).toBe(true);
    expect(await objectKeys(blob.blobId)).toHaveLength(3);
    expect((await backend.stat(blob.blobId)).bytes).toBe(bytes.length);
    // Pieces that start and end inside objects.
    expect((await readAll(owner, blob.blobId, bytes.length, 70_001)).equals(bytes)).toBe(true);
    const mid = await store.read(owner, { blobId: blob.blobId, offset: 99_990, maxBytes: 20 });
    expect(mid.data.equals(bytes.subarray(99_990, 100_010))).toBe(true);
  });

  it('an append whose transaction failed leaves an object the retry at that offset replaces', async () => {
    const [u] = await seedDirectory(db, 1);
    const owner = actorOf(u!.devices[0]!);
    const bytes = randomBytes(1000);
    const blob = await store.create(owner, bytes.length);
    // What a rolled-back append leaves: an object at the received offset, not counted.
    await backend.putChunk(db, blob.blobId, 0, randomBytes(900));
    expect((await store.status(owner, blob.blobId)).received).toBe(0);
    await store.append(owner, { blobId: blob.blobId, offset: 0, data: bytes.subarray(0, 400) });
    await store.append(owner, { blobId: blob.blobId, offset: 400, data: bytes.subarray(400) });
    expect((await readAll(owner, blob.blobId, bytes.length, 1 << 20)).equals(bytes)).toBe(true);
  });

  it('takes presigned uploads the client PUTs itself, counting only what the bucket holds', async () => {
    const [u, other] = await seedDirectory(db, 2);
    const owner = actorOf(u!.devices[0]!);
    const bytes = randomBytes(6 * 1024 * 1024 + 17);
    const blob = await store.create(owner, bytes.length);
    const half = 4 * 1024 * 1024;
    const first = await store.presignUpload(owner, { blobId: blob.blobId, offset: 0, length: half });
    expect(Date.parse(first.expiresAt)).toBeGreaterThan(Date.now());
    // Committing before the PUT counts nothing.
    await expect(store.commitUpload(owner, { blobId: blob.blobId, offset: 0, length: half })).rejects.toMatchObject({ code: 'upload_incomplete' });
    const put = await fetch(first.url, { method: 'PUT', body: bytes.subarray(0, half) });
    expect(put.status).toBe(200);
    // A length other than what was PUT is refused too.
    await expect(store.commitUpload(owner, { blobId: blob.blobId, offset: 0, length: half - 1 })).rejects.toMatchObject({ code: 'upload_incomplete' });
    expect((await store.commitUpload(owner, { blobId: blob.blobId, offset: 0, length: half })).received).toBe(half);
    // Only at the received offset, only within the declared size, only by the owner.
    await expect(store.presignUpload(owner, { blobId: blob.blobId, offset: 0, length: 10 })).rejects.toMatchObject({ code: 'offset_mismatch' });
    await expect(store.presignUpload(owner, { blobId: blob.blobId, offset: half, length: bytes.length })).rejects.toMatchObject({ code: 'blob_too_large' });
    await expect(store.presignUpload(actorOf(other!.devices[0]!), { blobId: blob.blobId, offset: half, length: 10 })).rejects.toMatchObject({
      code: 'blob_not_found',
    });
    const second = await store.presignUpload(owner, { blobId: blob.blobId, offset: half, length: bytes.length - half });
    expect((await fetch(second.url, { method: 'PUT', body: bytes.subarray(half) })).status).toBe(200);
    const done = await store.commitUpload(owner, { blobId: blob.blobId, offset: half, length: bytes.length - half });
    expect(done.complete).toBe(true);

    // Presigned downloads: the parts in order make the blob; someone who may not read it gets nothing.
    const dl = await store.presignDownload(owner, blob.blobId);
    expect(dl.parts.map((p) => [p.offset, p.length])).toEqual([
      [0, half],
      [half, bytes.length - half],
    ]);
    const got = Buffer.concat(await Promise.all(dl.parts.map(async (p) => Buffer.from(await (await fetch(p.url)).arrayBuffer()))));
    expect(got.equals(bytes)).toBe(true);
    await expect(store.presignDownload(actorOf(other!.devices[0]!), blob.blobId)).rejects.toMatchObject({ code: 'blob_not_found' });
  });

  it('refuses a presigned download of an incomplete blob', async () => {
    const [u] = await seedDirectory(db, 1);
    const owner = actorOf(u!.devices[0]!);
    const blob = await store.create(owner, 100);
    await store.append(owner, { blobId: blob.blobId, offset: 0, data: randomBytes(50) });
    await expect(store.presignDownload(owner, blob.blobId)).rejects.toMatchObject({ code: 'blob_incomplete' });
  });

  it('the collector deletes the objects of a blob nothing references', async () => {
    const [u] = await seedDirectory(db, 1);
    const owner = actorOf(u!.devices[0]!);
    const blob = await store.create(owner, 2000);
    await store.append(owner, { blobId: blob.blobId, offset: 0, data: randomBytes(1000) });
    await store.append(owner, { blobId: blob.blobId, offset: 1000, data: randomBytes(1000) });
    expect(await objectKeys(blob.blobId)).toHaveLength(2);
    const later = new Date(Date.now() + 60_000);
    expect(await collectBlobs(db, backend, { graceMs: 0, uploadTtlMs: 3_600_000 }, later)).toBeGreaterThanOrEqual(1);
    expect(await objectKeys(blob.blobId)).toEqual([]);
    await expect(store.status(owner, blob.blobId)).rejects.toMatchObject({ code: 'blob_not_found' });
  });

  it('the PostgreSQL backend refuses presigned transfers with a stable code', async () => {
    const [u] = await seedDirectory(db, 1);
    const owner = actorOf(u!.devices[0]!);
    const pg = new BlobStore(db, new PostgresBlobBackend(db), { quotaBytes: 1 << 30 });
    expect(pg.direct).toBeUndefined();
    const blob = await pg.create(owner, 10);
    await expect(pg.presignUpload(owner, { blobId: blob.blobId, offset: 0, length: 10 })).rejects.toMatchObject({ code: 'direct_transfer_unavailable' });
    await expect(pg.presignDownload(owner, blob.blobId)).rejects.toMatchObject({ code: 'direct_transfer_unavailable' });
  });
});
