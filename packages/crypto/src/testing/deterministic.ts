// Test support (excluded from the build): a seeded EntropySource so the
// published test vectors are reproducible byte for byte, including RSA-OAEP,
// whose encryption is randomised by its seed (RFC 8017 §7.1.1 step 2d).
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, fromBase64Url, utf8, type Bytes } from '../encoding.js';
import type { EntropySource } from '../random.js';

function counterBytes(n: number): Uint8Array {
  return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

/** MGF1 with SHA-256 (RFC 8017 §B.2.1). */
function mgf1(seedBytes: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let c = 0, o = 0; o < length; c++, o += 32) out.set(sha256(concatBytes(seedBytes, counterBytes(c))).subarray(0, Math.min(32, length - o)), o);
  return out;
}

function toBigInt(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  let b = base % mod;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
  }
  return r;
}

/**
 * RSAES-OAEP-ENCRYPT (RFC 8017 §7.1.1) with SHA-256/MGF1-SHA-256 and a given
 * seed. Test-vector generation only: textbook modexp, not constant time.
 */
export async function oaepEncryptWithSeed(publicKey: CryptoKey, message: Uint8Array, label: Uint8Array, oaepSeed: Uint8Array): Promise<Bytes> {
  const jwk = await globalThis.crypto.subtle.exportKey('jwk', publicKey);
  const n = toBigInt(fromBase64Url(jwk.n!));
  const e = toBigInt(fromBase64Url(jwk.e!));
  const k = fromBase64Url(jwk.n!).length;
  const hLen = 32;
  if (message.length > k - 2 * hLen - 2) throw new RangeError('message too long');
  const db = concatBytes(sha256(label), new Uint8Array(k - message.length - 2 * hLen - 2), new Uint8Array([1]), message);
  const dbMask = mgf1(oaepSeed, k - hLen - 1);
  const maskedDb = db.map((b, i) => b ^ dbMask[i]!);
  const seedMask = mgf1(maskedDb, hLen);
  const maskedSeed = oaepSeed.map((b, i) => b ^ seedMask[i]!);
  const em = concatBytes(new Uint8Array([0]), maskedSeed, maskedDb);
  let c = modPow(toBigInt(em), e, n);
  const out = new Uint8Array(k);
  for (let i = k - 1; i >= 0; i--, c >>= 8n) out[i] = Number(c & 255n);
  return out;
}

/** Entropy from a SHA-256 counter stream over `label`: reproducible, not secret. */
export function seededEntropy(label: string): EntropySource & { readonly log: { oaepSeeds: Uint8Array[] } } {
  let counter = 0;
  const next = (length: number): Bytes => {
    const out = new Uint8Array(length);
    for (let o = 0; o < length; o += 32) out.set(sha256(concatBytes(utf8(label), counterBytes(counter++))).subarray(0, Math.min(32, length - o)), o);
    return out;
  };
  const log = { oaepSeeds: [] as Uint8Array[] };
  return {
    log,
    randomBytes: next,
    async rsaOaepEncrypt(publicKey, plaintext, oaepLabel) {
      const s = next(32);
      log.oaepSeeds.push(s);
      return oaepEncryptWithSeed(publicKey, plaintext, oaepLabel, s);
    },
  };
}
