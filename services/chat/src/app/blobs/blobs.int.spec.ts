// Blob storage on real PostgreSQL: uploads with quota and resumable offsets,
// readers (owner, members of a chat whose message references the blob), the
// send path's message_blobs rows, and the collector.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { EventStore, createLogger, type AppError, type Database } from '@bil/runtime';
import { MAX_BLOB_BYTES } from '@bil/proto/limits';
import { chatReadModels } from '../projections/read-models.js';
import { ChatApp } from '../chat-app.js';
import { actorOf, b64, envelope, openChatDb, seedDirectory, uuidv7, type TestDevice } from '../../test-support.js';
import { BlobStore } from './blob-store.js';
import { PostgresBlobBackend } from './postgres-backend.js';
import { collectBlobs, releaseMessageBlobs } from './collector.js';

let t: Awaited<ReturnType<typeof openChatDb>>;
let db: Database;
let app: ChatApp;
let blobs: BlobStore;
let backend: PostgresBlobBackend;
let alice: TestDevice;
let bob: TestDevice;
let carol: TestDevice;
let chatId: string;

const QUOTA = 4000;

beforeAll(async () => {
  t = await openChatDb('chatblobs', 4);
  db = t.db;
  app = new ChatApp(db, new EventStore(db, [chatReadModels]), { maxGroupMembers: 64 }, createLogger('chat-blobs-test', 'silent'));
  backend = new PostgresBlobBackend(db);
  blobs = new BlobStore(db, backend, { quotaBytes: QUOTA });
  [alice, bob, carol] = (await seedDirectory(db, 3)).map((u) => u.devices[0]!) as [TestDevice, TestDevice, TestDevice];
  chatId = (await app.createPersonalChat(actorOf(alice), bob.userId)).chat.chatId;
});

afterAll(() => t?.close());

async function code(p: Promise<unknown>): Promise<{ code: string; details?: unknown }> {
  try {
    await p;
  } catch (err) {
    return { code: (err as AppError).code, details: (err as AppError).details };
  }
  throw new Error('expected a refusal');
}

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill);

async function uploaded(owner: TestDevice, parts: number[]): Promise<string> {
  const size = parts.reduce((a, b) => a + b, 0);
  const b = await blobs.create(actorOf(owner), size);
  let at = 0;
  for (const [i, n] of parts.entries()) {
    await blobs.append(actorOf(owner), { blobId: b.blobId, offset: at, data: bytes(n, i + 1) });
    at += n;
  }
  return b.blobId;
}

function send(from: TestDevice, to: TestDevice, attachmentIds: string[]) {
  const messageId = uuidv7();
  return app.sendMessage(actorOf(from), {
    chatId,
    messageId,
    envelope: envelope({ chatId, messageId, sender: from, scheme: 'direct', epoch: 0, recipientUserId: to.userId }),
    wrappedKeys: [from, to].map((d) => ({ deviceId: d.deviceId, wrappedKey: b64(384) })),
    attachmentIds,
  });
}

describe('blob uploads', () => {
  it('appends at the received offset only, completes at the declared size, resumes after a refusal', async () => {
    const b = await blobs.create(actorOf(alice), 300);
    expect(b).toMatchObject({ size: 300, received: 0, complete: false });
    expect(await blobs.append(actorOf(alice), { blobId: b.blobId, offset: 0, data: bytes(100, 1) })).toMatchObject({ received: 100, complete: false });
    expect(await code(blobs.append(actorOf(alice), { blobId: b.blobId, offset: 0, data: bytes(100, 1) }))).toEqual({ code: 'offset_mismatch', details: { received: 100 } });
    expect((await code(blobs.append(actorOf(alice), { blobId: b.blobId, offset: 100, data: bytes(201, 2) }))).code).toBe('blob_too_large');
    expect((await code(blobs.read(actorOf(alice), { blobId: b.blobId, offset: 0, maxBytes: 10 }))).code).toBe('blob_incomplete');
    expect((await code(blobs.append(actorOf(bob), { blobId: b.blobId, offset: 100, data: bytes(200, 2) }))).code).toBe('blob_not_found');
    expect(await blobs.append(actorOf(alice), { blobId: b.blobId, offset: 100, data: bytes(200, 2) })).toMatchObject({ received: 300, complete: true });
    // A range across the two stored rows.
    const r = await blobs.read(actorOf(alice), { blobId: b.blobId, offset: 90, maxBytes: 20 });
    expect([...r.data]).toEqual([...bytes(10, 1), ...bytes(10, 2)]);
    expect(await backend.stat(b.blobId)).toEqual({ bytes: 300 });
  });

  it('refuses sizes past the limit and uploads past the quota', async () => {
    expect((await code(blobs.create(actorOf(alice), MAX_BLOB_BYTES + 1))).code).toBe('blob_too_large');
    expect((await code(blobs.create(actorOf(alice), 0))).code).toBe('invalid_argument');
    const err = await code(blobs.create(actorOf(alice), QUOTA));
    expect(err.code).toBe('quota_exceeded');
    expect(err.details).toMatchObject({ quota_bytes: QUOTA });
    // Another user's quota is their own.
    expect((await blobs.create(actorOf(carol), QUOTA)).size).toBe(QUOTA);
  });
});

describe('attachments on messages', () => {
  it("records the sender's completed blobs with the message; the chat's members may read them, no one else", async () => {
    const blobId = await uploaded(alice, [50, 50]);
    const [plain, withFile] = await Promise.all([send(alice, bob, []), send(alice, bob, [blobId])]);
    expect(withFile.seq).toBe(plain.seq + 1);
    expect(await db.query(`SELECT seq::int AS seq FROM chat.message_blobs WHERE blob_id = ?`, [blobId])).toEqual([{ seq: withFile.seq }]);
    expect((await blobs.read(actorOf(bob), { blobId, offset: 0, maxBytes: 1000 })).data.length).toBe(100);
    expect((await code(blobs.status(actorOf(carol), blobId))).code).toBe('blob_not_found');
    expect((await code(blobs.status(actorOf(carol), randomUUID()))).code).toBe('blob_not_found');
  });

  it("refuses another user's blob, an incomplete one and a malformed list", async () => {
    const bobs = await uploaded(bob, [10]);
    const open = (await blobs.create(actorOf(alice), 10)).blobId;
    expect(await code(send(alice, bob, [bobs]))).toMatchObject({ code: 'attachment_not_usable', details: { blob_ids: [bobs] } });
    expect(await code(send(alice, bob, [open]))).toMatchObject({ code: 'attachment_not_usable', details: { blob_ids: [open] } });
    expect((await code(send(alice, bob, ['nope']))).code).toBe('invalid_attachments');
  });
});

describe('the collector', () => {
  it('deletes unreferenced and stale blobs with their bytes, keeps referenced ones until released', async () => {
    const kept = await uploaded(alice, [20]);
    const sent = await send(alice, bob, [kept]);
    const lonely = await uploaded(alice, [20]);
    const later = new Date(Date.now() + 60_000);
    await collectBlobs(db, backend, { graceMs: 1000, uploadTtlMs: 1000 }, later);
    const left = async (id: string) => (await db.query(`SELECT 1 FROM chat.blobs WHERE blob_id = ?`, [id])).length;
    expect(await left(lonely)).toBe(0);
    expect(await backend.stat(lonely)).toEqual({ bytes: 0 });
    expect(await left(kept)).toBe(1);
    // Nothing incomplete survives its TTL.
    expect(await db.query(`SELECT blob_id FROM chat.blobs WHERE status = 'uploading'`)).toEqual([]);
    await db.tx((tx) => releaseMessageBlobs(tx, chatId, [sent.seq]));
    await collectBlobs(db, backend, { graceMs: 1000, uploadTtlMs: 1000 }, later);
    expect(await left(kept)).toBe(0);
  });
});
