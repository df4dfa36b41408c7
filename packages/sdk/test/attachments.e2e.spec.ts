// Encrypted attachments through the real stack (identity, chat, gateway as
// built processes on the local PostgreSQL, Redis and NATS): files encrypted
// by the SDK, streamed through the gateway into the chat service's blob
// storage and back, never held whole in memory.
import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { CannotDecryptError } from '@bil/crypto';
import { BilApiError, BilClient, type AttachmentRef } from '../src/node.js';
import { chatStackBuilt, startStack, type Stack } from './stack.js';
import { people, type Device } from './people.js';

const MiB = 1024 * 1024;

// A full collection before each memory sample, so the samples count what is live, not garbage not yet collected.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const live = () => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

/** `size` bytes of a fixed pattern, yielded 256 KiB at a time (nothing else kept), hashed on the way. */
function generated(size: number, seed: number, hash = createHash('sha256')): Iterable<Uint8Array> {
  return (function* () {
    const block = new Uint8Array(256 * 1024);
    for (let at = 0; at < size; at += block.length) {
      const n = Math.min(block.length, size - at);
      for (let i = 0; i < n; i += 4) {
        const v = (at + i) * 2654435761 + seed;
        block[i] = v & 0xff;
        block[i + 1] = (v >>> 8) & 0xff;
        block[i + 2] = (v >>> 16) & 0xff;
        block[i + 3] = (v >>> 24) & 0xff;
      }
      const piece = block.subarray(0, n);
      hash.update(piece);
      yield piece;
    }
  })();
}

/** Reads a download to the end, hashing it; returns the digest and the size. */
async function drain(src: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const p of src) {
    hash.update(p);
    size += p.length;
  }
  return { sha256: hash.digest('hex'), size };
}

describe.skipIf(!chatStackBuilt)('@bil/sdk attachments against identity + chat + gateway (e2e)', () => {
  let stack: Stack;
  let db: pg.Client;
  let alice: Device;
  let bob: Device;
  let mallory: Device;
  let chatId: string;
  const { register } = people(() => stack.baseUrl);

  async function status(d: Device, blobId: string): Promise<{ status: number; body: { received?: number; error?: { code: string } } }> {
    const token = (await d.store.load())!.tokens!.accessToken;
    const res = await fetch(`${stack.baseUrl}/v1/blobs/${blobId}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as { received?: number; error?: { code: string } } };
  }

  /** Bob's view of the newest message with attachments. */
  async function refsSeenByBob(): Promise<AttachmentRef[]> {
    const page = await bob.client.messages.history(chatId);
    const last = page.messages[page.messages.length - 1]!;
    if (!last.ok) throw new Error(`bob could not read the message: ${last.error}`);
    return [...(last.attachments ?? [])];
  }

  beforeAll(async () => {
    stack = await startStack(
      {},
      {
        chat: true,
        chatEnv: { CHAT_BLOB_QUOTA_BYTES: String(80 * MiB), CHAT_BLOB_GRACE_SECONDS: '3', CHAT_BLOB_COLLECT_INTERVAL_SECONDS: '1' },
      },
    );
    [alice, bob, mallory] = (await Promise.all(['alice', 'bob', 'mallory'].map(register))) as [Device, Device, Device];
    chatId = (await alice.client.chats.createPersonal(bob.account.userId)).chatId;
    db = new pg.Client({ connectionString: stack.env.databaseUrl });
    await db.connect();
  }, 120_000);

  afterAll(async () => {
    await db?.end();
    await stack?.stop();
  });

  it('a 50 MB file round trip, streamed both ways without holding the file in memory', async () => {
    const size = 50 * 1000 * 1000;
    const sent = createHash('sha256');
    const base = live();
    let peak = 0;
    let samples = 0;
    const sample = setInterval(() => {
      samples++;
      peak = Math.max(peak, live() - base);
    }, 50);
    try {
      const ref = await alice.client.attachments.upload(chatId, generated(size, 1, sent), { name: 'big.bin', mime: 'application/octet-stream', size });
      expect(ref).toMatchObject({ size, chunk_size: 65536, name: 'big.bin' });
      const message = await alice.client.attachments.send(chatId, [ref], 'the big file');
      expect(message.seq).toBeGreaterThan(0);
      const [seen] = await refsSeenByBob();
      expect(seen).toEqual(ref);
      const got = await drain(bob.client.attachments.download(seen!));
      expect(got).toEqual({ sha256: sent.digest('hex'), size });
    } finally {
      clearInterval(sample);
    }
    // The file is 50 MB; what the client held live at any time is a 4 MiB segment (and its copy in fetch),
    // download chunks in flight and the test's own buffers: 15 to 21 MiB measured on the 2-core machine.
    expect(samples).toBeGreaterThan(10);
    expect(peak).toBeLessThan(30 * MiB);
  }, 180_000);

  it('a chunk tampered with in the database is refused on download', async () => {
    const size = 300 * 1024;
    const ref = await alice.client.attachments.upload(chatId, generated(size, 2), { name: 't.bin', mime: 'application/octet-stream', size });
    await alice.client.attachments.send(chatId, [ref]);
    const [seen] = await refsSeenByBob();
    // One bit of the ciphertext, in the middle of the second 64 KiB chunk.
    const { rowCount } = await db.query(
      `UPDATE chat.blob_chunks SET data = set_byte(data, 100000, get_byte(data, 100000) # 1) WHERE blob_id = $1 AND start_offset = 0`,
      [ref.blob_id],
    );
    expect(rowCount).toBe(1);
    await expect(drain(bob.client.attachments.download(seen!))).rejects.toBeInstanceOf(CannotDecryptError);
    // A wrong digest in the reference (a server that swapped the blob for another sender's) is refused too.
    const other = await alice.client.attachments.upload(chatId, generated(1000, 3), { name: 'o', mime: 'x', size: 1000 });
    await alice.client.attachments.send(chatId, [other]);
    await expect(drain(bob.client.attachments.download({ ...other, digest: ref.digest }))).rejects.toBeInstanceOf(CannotDecryptError);
  }, 60_000);

  it('someone not in the chat can neither download nor see the blob; no one can reference another user\'s blob', async () => {
    const ref = await alice.client.attachments.upload(chatId, generated(5000, 4), { name: 's', mime: 'x', size: 5000 });
    await alice.client.attachments.send(chatId, [ref]);
    const err = await drain(mallory.client.attachments.download(ref)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BilApiError);
    expect(err).toMatchObject({ status: 404, code: 'blob_not_found' });
    expect(await status(mallory, ref.blob_id)).toMatchObject({ status: 404, body: { error: { code: 'blob_not_found' } } });
    // Mallory can't get Alice's blob into a chat of hers either.
    const hers = (await mallory.client.chats.createPersonal(bob.account.userId)).chatId;
    const refused = await mallory.client.attachments.send(hers, [ref], 'look').catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 409, code: 'attachment_not_usable' });
  }, 60_000);

  it('an upload past the quota is refused before any byte is sent', async () => {
    const size = 40 * MiB; // 50 MB are already held of an 80 MiB quota
    const err = await alice.client.attachments.upload(chatId, generated(size, 5), { name: 'q', mime: 'x', size }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BilApiError);
    expect(err).toMatchObject({ status: 409, code: 'quota_exceeded' });
  }, 60_000);

  it('an interrupted upload resumes from the offset the server received', async () => {
    const size = 6 * MiB;
    const sent = createHash('sha256');
    const puts: string[] = [];
    let cut = false;
    // The first content upload is cut after half its body reached the server, and the client sees a network failure.
    const flaky = async (input: string, init: RequestInit): Promise<Response> => {
      if (init.method === 'PUT') {
        puts.push(new URL(input).searchParams.get('offset')!);
        if (!cut) {
          cut = true;
          const body = init.body as Uint8Array<ArrayBuffer>;
          await fetch(input, { ...init, body: body.subarray(0, Math.floor(body.length / 2)) });
          throw new TypeError('fetch failed');
        }
      }
      return fetch(input, init);
    };
    const client = new BilClient({ baseUrl: stack.baseUrl, keyStore: alice.store, fetch: flaky });
    const ref = await client.attachments.upload(chatId, generated(size, 6, sent), { name: 'r.bin', mime: 'application/octet-stream', size });
    expect(puts[0]).toBe('0');
    expect(Number(puts[1])).toBeGreaterThan(0); // resumed in the middle of the first segment, not from 0
    await alice.client.attachments.send(chatId, [ref]);
    const [seen] = await refsSeenByBob();
    expect(await drain(bob.client.attachments.download(seen!))).toEqual({ sha256: sent.digest('hex'), size });
  }, 60_000);

  it('the collector deletes a blob no message references, and keeps referenced ones', async () => {
    const lonely = await alice.client.attachments.upload(chatId, generated(2000, 7), { name: 'l', mime: 'x', size: 2000 });
    const kept = await alice.client.attachments.upload(chatId, generated(2000, 8), { name: 'k', mime: 'x', size: 2000 });
    await alice.client.attachments.send(chatId, [kept]);
    expect((await status(alice, lonely.blob_id)).status).toBe(200);
    const deadline = Date.now() + 15_000;
    while ((await status(alice, lonely.blob_id)).status !== 404) {
      if (Date.now() > deadline) throw new Error('the unreferenced blob was never collected');
      await new Promise((r) => setTimeout(r, 250));
    }
    const { rows } = await db.query('SELECT count(*)::int AS n FROM chat.blob_chunks WHERE blob_id = $1', [lonely.blob_id]);
    expect(rows[0].n).toBe(0);
    expect((await status(alice, kept.blob_id)).status).toBe(200);
    expect((await drain(bob.client.attachments.download(kept))).size).toBe(2000);
  }, 60_000);
});
