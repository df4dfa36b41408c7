// Attachments with the S3 backend, through the real stack (identity, chat,
// gateway as built processes) and an S3-compatible server the test starts
// (s3rver via @bil/testkit): the SDK moves the ciphertext to and from the
// bucket itself with presigned URLs, the chat database holds no bytes, and a
// tampered object in the bucket is refused on download.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startTestS3, type TestS3 } from '@bil/testkit';
import { CannotDecryptError } from '@bil/crypto';
import { BilClient } from '../src/node.js';
import { chatStackBuilt, startStack, type Stack } from './stack.js';
import { people, type Device } from './people.js';

const MiB = 1024 * 1024;

async function drain(src: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of src) parts.push(p);
  return Buffer.concat(parts);
}

describe.skipIf(!chatStackBuilt)('@bil/sdk attachments with the S3 backend (e2e)', () => {
  let stack: Stack;
  let bucket: TestS3;
  let s3: S3Client;
  let db: pg.Client;
  let alice: Device;
  let bob: Device;
  let chatId: string;
  const { register } = people(() => stack.baseUrl);

  beforeAll(async () => {
    bucket = await startTestS3();
    stack = await startStack({}, { chat: true, chatEnv: bucket.chatEnv });
    s3 = new S3Client({
      endpoint: bucket.endpoint,
      region: bucket.region,
      forcePathStyle: true,
      credentials: { accessKeyId: bucket.accessKeyId, secretAccessKey: bucket.secretAccessKey },
    });
    [alice, bob] = (await Promise.all(['alice', 'bob'].map(register))) as [Device, Device];
    chatId = (await alice.client.chats.createPersonal(bob.account.userId)).chatId;
    db = new pg.Client({ connectionString: stack.env.databaseUrl });
    await db.connect();
  }, 120_000);

  afterAll(async () => {
    s3?.destroy();
    await db?.end();
    await stack?.stop();
    await bucket?.stop();
  });

  async function objects(blobId: string): Promise<Array<{ key: string; size: number }>> {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket.bucket, Prefix: `blobs/${blobId}/` }));
    return (page.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size! }));
  }

  it('a file goes to the bucket and back through presigned URLs, never through the gateway', async () => {
    const file = randomBytes(9 * MiB + 123);
    const gatewayBodies: string[] = [];
    // Watches what this client sends where: bytes to the gateway would be PUT /v1/blobs/…/content.
    const watching = async (input: string, init: RequestInit): Promise<Response> => {
      if (init.method === 'PUT') gatewayBodies.push(input.startsWith(stack.baseUrl) ? 'gateway' : 'bucket');
      if (!input.startsWith(stack.baseUrl)) expect(new Headers(init.headers).get('authorization')).toBeNull();
      return fetch(input, init);
    };
    const client = new BilClient({ baseUrl: stack.baseUrl, keyStore: alice.store, fetch: watching });
    const ref = await client.attachments.upload(chatId, [file], { name: 'photo.jpg', mime: 'image/jpeg', size: file.length });
    expect(gatewayBodies.length).toBeGreaterThanOrEqual(3); // 4 MiB segments
    expect(gatewayBodies.every((where) => where === 'bucket')).toBe(true);
    await client.attachments.send(chatId, [ref], 'from the bucket');

    const stored = await objects(ref.blob_id);
    expect(stored.reduce((n, o) => n + o.size, 0)).toBeGreaterThan(file.length); // ciphertext: header and tags
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM chat.blob_chunks WHERE blob_id = $1`, [ref.blob_id]);
    expect(rows[0].n).toBe(0);

    const page = await bob.client.messages.history(chatId);
    const last = page.messages[page.messages.length - 1]!;
    if (!last.ok) throw new Error(`bob could not read the message: ${last.error}`);
    const [seen] = last.attachments ?? [];
    const got = await drain(bob.client.attachments.download(seen!));
    expect(createHash('sha256').update(got).digest('hex')).toBe(createHash('sha256').update(file).digest('hex'));
  }, 120_000);

  it('an object tampered with in the bucket is refused on download', async () => {
    const file = randomBytes(200_000);
    const ref = await alice.client.attachments.upload(chatId, [file], { name: 't.bin', mime: 'application/octet-stream', size: file.length });
    await alice.client.attachments.send(chatId, [ref]);
    const [first] = await objects(ref.blob_id);
    const obj = await s3.send(new GetObjectCommand({ Bucket: bucket.bucket, Key: first!.key }));
    const bytes = Buffer.from(await obj.Body!.transformToByteArray());
    bytes[100_000] = bytes[100_000]! ^ 1;
    await s3.send(new PutObjectCommand({ Bucket: bucket.bucket, Key: first!.key, Body: bytes }));
    await expect(drain(bob.client.attachments.download(ref))).rejects.toBeInstanceOf(CannotDecryptError);
  }, 60_000);

  it('someone outside the chat gets no download URLs', async () => {
    const mallory = await register('mallory');
    const file = randomBytes(5000);
    const ref = await alice.client.attachments.upload(chatId, [file], { name: 's', mime: 'x', size: file.length });
    await alice.client.attachments.send(chatId, [ref]);
    await expect(drain(mallory.client.attachments.download(ref))).rejects.toMatchObject({ status: 404, code: 'blob_not_found' });
  }, 60_000);
});
