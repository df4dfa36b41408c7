import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { attachmentCiphertextSize, attachmentRef, decryptAttachment, encryptAttachment } from './attachment.js';
import type { AttachmentRef } from './content.js';
import { fromBase64Url, toBase64Url, type Bytes } from './encoding.js';
import { CannotDecryptError } from './errors.js';
import { buildAttachmentVectors, type AttachmentVector } from './testing/vectors-attachment.js';

const file = new URL('../../../docs/testvectors/attachment.json', import.meta.url);

async function collect(src: AsyncIterable<Uint8Array>): Promise<Bytes> {
  const parts: Uint8Array[] = [];
  for await (const p of src) parts.push(p);
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Encrypts `plain` with 16-byte chunks; returns the ref and the ciphertext's sealed chunks (header first). */
async function sealed(plain: Uint8Array, chunkSize = 16): Promise<{ ref: AttachmentRef; parts: Bytes[] }> {
  const enc = encryptAttachment([plain], { chunkSize });
  const parts: Bytes[] = [];
  for await (const p of enc) parts.push(p);
  return { ref: attachmentRef('b', enc.sealed(), { name: 'n', mime: 'm' }), parts };
}

const plain40 = Uint8Array.from({ length: 40 }, (_, i) => i);

describe('attachments: chunked AES-256-GCM (STREAM)', () => {
  it('docs/testvectors/attachment.json is reproduced and decrypts from the file alone', async () => {
    const built = await buildAttachmentVectors();
    expect(JSON.stringify(built['attachment.json'], null, 2) + '\n').toBe(readFileSync(file, 'utf8'));
    const { vectors } = JSON.parse(readFileSync(file, 'utf8')) as { vectors: AttachmentVector[] };
    expect(vectors.length).toBeGreaterThanOrEqual(4);
    for (const v of vectors) {
      const plain = await collect(decryptAttachment(v, [fromBase64Url(v.ciphertext)]));
      expect(toBase64Url(plain)).toBe(v.plaintext);
      expect(fromBase64Url(v.ciphertext).length).toBe(attachmentCiphertextSize(v.size, v.chunk_size));
    }
  });

  it('round trips across chunk boundaries, whatever the source splits', async () => {
    for (const n of [0, 1, 15, 16, 17, 32, 100]) {
      const plain = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
      const ragged = (function* () {
        for (let i = 0; i < n; i += 5) yield plain.subarray(i, i + 5);
      })();
      const enc = encryptAttachment(ragged, { chunkSize: 16 });
      const ct = await collect(enc);
      const s = enc.sealed();
      expect(s.size).toBe(n);
      expect(ct.length).toBe(attachmentCiphertextSize(n, 16));
      const ref = attachmentRef('b', s, { name: 'x', mime: 'y' });
      // Fed back one byte at a time.
      const bytewise = (function* () {
        for (let i = 0; i < ct.length; i++) yield ct.subarray(i, i + 1);
      })();
      expect(await collect(decryptAttachment(ref, bytewise))).toEqual(plain);
    }
  });

  it('a fresh key and nonce prefix per file', async () => {
    const a = await sealed(plain40);
    const b = await sealed(plain40);
    expect(a.ref.key).not.toBe(b.ref.key);
    expect(a.parts[0]).not.toEqual(b.parts[0]);
  });

  it('refuses a tampered chunk', async () => {
    const { ref, parts } = await sealed(plain40);
    const bad = parts.map((p) => p.slice());
    bad[2]![3]! ^= 1;
    await expect(collect(decryptAttachment(ref, bad))).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses a truncated ciphertext (a whole final chunk dropped, or bytes cut)', async () => {
    const { ref, parts } = await sealed(plain40);
    await expect(collect(decryptAttachment(ref, parts.slice(0, -1)))).rejects.toBeInstanceOf(CannotDecryptError);
    const all = await collect((async function* () { yield* parts; })());
    await expect(collect(decryptAttachment(ref, [all.subarray(0, all.length - 1)]))).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(collect(decryptAttachment(ref, [all.subarray(0, 5)]))).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses reordered chunks and a repeated chunk', async () => {
    const { ref, parts } = await sealed(plain40);
    const [h, c0, c1, c2] = parts;
    await expect(collect(decryptAttachment(ref, [h!, c1!, c0!, c2!]))).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(collect(decryptAttachment(ref, [h!, c0!, c0!, c1!, c2!]))).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses a wrong digest or size, and releases no last chunk before the digest check', async () => {
    const { ref, parts } = await sealed(plain40);
    const wrong = { ...ref, digest: toBase64Url(new Uint8Array(32)) };
    const released: Uint8Array[] = [];
    await expect(
      (async () => {
        for await (const p of decryptAttachment(wrong, parts)) released.push(p);
      })(),
    ).rejects.toBeInstanceOf(CannotDecryptError);
    expect(released.reduce((s, p) => s + p.length, 0)).toBe(32); // the final 8 bytes were held back
    await expect(collect(decryptAttachment({ ...ref, size: 39 }, parts))).rejects.toBeInstanceOf(CannotDecryptError);
    await expect(collect(decryptAttachment({ ...ref, key: 'short' }, parts))).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('refuses a ciphertext under another key with a matching digest (the key is bound by the tags)', async () => {
    const { ref, parts } = await sealed(plain40);
    const other = await sealed(plain40);
    await expect(collect(decryptAttachment({ ...other.ref, digest: ref.digest }, parts))).rejects.toBeInstanceOf(CannotDecryptError);
  });

  it('sealed() before the end is an error', () => {
    expect(() => encryptAttachment([plain40]).sealed()).toThrow(/not been read/);
  });
});
