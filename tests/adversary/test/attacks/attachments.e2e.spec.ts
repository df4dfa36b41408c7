// The server rewrites attachment ciphertext on its way to a reader: one bit
// flipped, the tail cut off, or another file of the same sender served in its
// place. The reference (key, SHA-256 digest, size) travels inside the
// end-to-end encrypted message, so the SDK refuses each one (the uniform
// CannotDecryptError) and releases no plaintext past the check; honest bytes
// through the same proxy come back whole.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CannotDecryptError } from '@bil/crypto';
import type { AttachmentRef } from '@bil/sdk/node';
import { registerAll, type Person } from '../harness/clients.js';
import { startProxy, type MaliciousGateway } from '../harness/proxy.js';

const content = (blobId: string) => new RegExp(`^/v1/blobs/${blobId}/content$`);

async function drain(src: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const p of src) {
    h.update(p);
    size += p.length;
  }
  return { sha256: h.digest('hex'), size };
}

describe('the server rewrites attachment ciphertext', () => {
  let proxy: MaliciousGateway;
  let alice: Person;
  let bob: Person;
  let chatId: string;

  beforeAll(async () => {
    proxy = await startProxy(inject('gatewayUrl'));
    [alice, bob] = await registerAll(proxy.url, 'alice', 'bob');
    chatId = (await alice.client.chats.createPersonal(bob.userId)).chatId;
  });
  afterEach(() => proxy.reset());
  afterAll(async () => {
    await proxy?.close();
  });

  /** Alice sends a file; what Bob's history shows of it (the reference came inside the encrypted message). */
  const sendFile = async (bytes: Buffer): Promise<AttachmentRef> => {
    const ref = await alice.client.attachments.upload(chatId, [bytes], { name: 'f.bin', mime: 'application/octet-stream', size: bytes.length });
    await alice.client.attachments.send(chatId, [ref]);
    const page = await bob.client.messages.history(chatId);
    const last = page.messages[page.messages.length - 1]!;
    if (!last.ok) throw new Error(`bob could not read the message: ${last.error}`);
    expect(last.attachments?.[0]).toEqual(ref);
    return last.attachments![0]!;
  };

  it('honest bytes pass through the proxy both ways', async () => {
    const file = randomBytes(200 * 1024);
    const ref = await sendFile(file);
    expect(await drain(bob.client.attachments.download(ref))).toEqual({ sha256: createHash('sha256').update(file).digest('hex'), size: file.length });
  });

  it('one bit flipped, the tail cut, or another file of the sender served instead: each refused', async () => {
    const ref = await sendFile(randomBytes(200 * 1024));
    const other = await sendFile(randomBytes(200 * 1024));
    // The other file's ciphertext, as the server holds it (seen on an honest download).
    let otherCiphertext: Buffer = Buffer.alloc(0);
    const look = proxy.onResponse('look', { method: 'GET', path: content(other.blob_id) }, (res) => void (otherCiphertext = res.bytes ?? otherCiphertext));
    await drain(bob.client.attachments.download(other));
    look.remove();
    expect(otherCiphertext.length).toBeGreaterThan(200 * 1024);
    const attacks: Array<[string, (b: Buffer) => Buffer]> = [
      ['flip one bit', (b) => Buffer.concat([b.subarray(0, 100_000), Buffer.of(b[100_000]! ^ 1), b.subarray(100_001)])],
      ['cut the last chunk', (b) => b.subarray(0, b.length - 70_000)],
      ['serve the other file', () => otherCiphertext],
    ];
    for (const [name, rewrite] of attacks) {
      const rule = proxy.onResponse(name, { method: 'GET', path: content(ref.blob_id), userId: bob.userId }, (res) => (res.bytes ? { bytes: rewrite(res.bytes) } : undefined));
      const err = await drain(bob.client.attachments.download(ref)).catch((e: unknown) => e);
      expect(rule.fired, name).toBe(1);
      expect(err, name).toBeInstanceOf(CannotDecryptError);
      rule.remove();
    }
  });
});
