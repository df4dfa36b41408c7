// docs/testvectors/attachment.json: encrypted attachments (attachment.ts) from
// fixed keys, nonce prefixes and plaintexts, so another implementation can
// check its chunking, nonces and digest byte for byte.
import { encryptAttachment, attachmentRef } from '../attachment.js';
import { toBase64Url, utf8, type Bytes } from '../encoding.js';
import { CHECK_TIME } from './vectors.js';

export interface AttachmentVector {
  description: string;
  key: string;
  nonce_prefix: string;
  chunk_size: number;
  plaintext: string;
  ciphertext: string;
  digest: string;
  size: number;
}

const bytes = (n: number, f: (i: number) => number): Bytes => Uint8Array.from({ length: n }, (_, i) => f(i) & 0xff);

const CASES: Array<{ description: string; chunkSize: number; plaintext: Bytes }> = [
  { description: 'empty file: one empty final chunk', chunkSize: 65536, plaintext: new Uint8Array(0) },
  { description: 'short file: one final chunk', chunkSize: 65536, plaintext: utf8('hello, attachment') },
  { description: 'three chunks of 16 bytes, the last short (40 bytes)', chunkSize: 16, plaintext: bytes(40, (i) => i) },
  { description: 'an exact multiple: the second 16-byte chunk is the final one', chunkSize: 16, plaintext: bytes(32, (i) => 255 - i) },
];

export async function buildAttachmentVectors(): Promise<{ 'attachment.json': { check_time: number; vectors: AttachmentVector[] } }> {
  const vectors: AttachmentVector[] = [];
  for (const [n, c] of CASES.entries()) {
    const key = bytes(32, (i) => i + n * 32);
    const noncePrefix = bytes(7, (i) => 0xa0 + i + n);
    const enc = encryptAttachment([c.plaintext], { key, noncePrefix, chunkSize: c.chunkSize });
    const parts: Bytes[] = [];
    for await (const part of enc) parts.push(part);
    const ref = attachmentRef('00000000-0000-7000-8000-000000000000', enc.sealed(), { name: 'v', mime: 'application/octet-stream' });
    const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    vectors.push({
      description: c.description,
      key: ref.key,
      nonce_prefix: toBase64Url(noncePrefix),
      chunk_size: c.chunkSize,
      plaintext: toBase64Url(c.plaintext),
      ciphertext: toBase64Url(all),
      digest: ref.digest,
      size: ref.size,
    });
  }
  return { 'attachment.json': { check_time: CHECK_TIME, vectors } };
}
