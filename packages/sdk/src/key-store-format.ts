// The encrypted key store format shared by FileKeyStore (Node, one file) and
// SealedKeyStore (any text storage, e.g. IndexedDB in a browser): the header
// (scrypt parameters, AES-256-GCM nonce) and its canonical JSON, which is the
// AEAD's associated data. Browser-safe: no Node built-ins. Format: docs/sdk.md
// "File key store format".
import { canonicalBytes, fromBase64Url } from '@bil/crypto';
import { KeyStoreFormatError } from './errors.js';

export const KEY_STORE_FORMAT = 'bil-sdk-key-store';
/** scrypt cost floor: N = 2^15, r = 8, p = 1 (32 MiB), as for the server's password hashes. */
export const MIN_SCRYPT_LOG2N = 15;
/** Ceiling on what a file may ask for, so a crafted file can't make us allocate gigabytes. */
export const MAX_SCRYPT_LOG2N = 22;

export interface KeyStoreHeader {
  readonly format: typeof KEY_STORE_FORMAT;
  readonly version: 1;
  readonly kdf: { readonly name: 'scrypt'; readonly log2n: number; readonly r: number; readonly p: number; readonly salt: string };
  readonly cipher: { readonly name: 'aes-256-gcm'; readonly nonce: string };
}

export interface KeyStoreFile extends KeyStoreHeader {
  /** AES-256-GCM(key, nonce, UTF-8 profile JSON, AD = canonical JSON of the header) ‖ 16-byte tag, base64url. */
  readonly ciphertext: string;
}

export type KdfParams = KeyStoreHeader['kdf'];

/** Strict base64url of `length` bytes (any length when undefined), else KeyStoreFormatError naming `what`. */
export function decodeField(text: unknown, length: number | undefined, what: string): Uint8Array<ArrayBuffer> {
  if (typeof text !== 'string') throw new KeyStoreFormatError(`bad ${what}`);
  try {
    return fromBase64Url(text, length);
  } catch {
    throw new KeyStoreFormatError(`bad ${what}`);
  }
}

export function checkLog2N(log2n: number): number {
  if (!Number.isInteger(log2n) || log2n < MIN_SCRYPT_LOG2N || log2n > MAX_SCRYPT_LOG2N) {
    throw new RangeError(`scryptLog2N: expected ${MIN_SCRYPT_LOG2N} to ${MAX_SCRYPT_LOG2N}`);
  }
  return log2n;
}

/** The validated header of a parsed key store file (KeyStoreFormatError otherwise). */
export function headerOf(file: unknown): KeyStoreHeader {
  const f = file as Partial<KeyStoreFile> | null;
  if (typeof f !== 'object' || f === null || f.format !== KEY_STORE_FORMAT) throw new KeyStoreFormatError('not a bil key store file');
  if (f.version !== 1) throw new KeyStoreFormatError(`unsupported version ${String(f.version)}`);
  const k = f.kdf;
  if (
    typeof k !== 'object' ||
    k === null ||
    k.name !== 'scrypt' ||
    !Number.isInteger(k.log2n) ||
    k.log2n < MIN_SCRYPT_LOG2N ||
    k.log2n > MAX_SCRYPT_LOG2N ||
    !Number.isInteger(k.r) ||
    k.r < 8 ||
    k.r > 32 ||
    !Number.isInteger(k.p) ||
    k.p < 1 ||
    k.p > 16
  ) {
    throw new KeyStoreFormatError('bad kdf parameters');
  }
  decodeField(k.salt, 16, 'kdf salt');
  if (typeof f.cipher !== 'object' || f.cipher === null || f.cipher.name !== 'aes-256-gcm') throw new KeyStoreFormatError('bad cipher');
  decodeField(f.cipher.nonce, 12, 'nonce');
  return {
    format: KEY_STORE_FORMAT,
    version: 1,
    kdf: { name: 'scrypt', log2n: k.log2n, r: k.r, p: k.p, salt: k.salt },
    cipher: { name: 'aes-256-gcm', nonce: f.cipher.nonce },
  };
}

/** The AEAD's associated data: the header's canonical JSON (RFC 8785), so changing any parameter fails decryption. */
export const associatedData = (h: KeyStoreHeader): Uint8Array<ArrayBuffer> => canonicalBytes({ ...h, kdf: { ...h.kdf }, cipher: { ...h.cipher } });

export const sameKdf = (a: KdfParams, b: KdfParams): boolean => a.salt === b.salt && a.log2n === b.log2n && a.r === b.r && a.p === b.p;

/** scrypt's memory bound for these parameters (128·N·r for V, plus room): the same in both stores. */
export const scryptMaxmem = (kdf: Pick<KdfParams, 'log2n' | 'r'>): number => 256 * 2 ** kdf.log2n * kdf.r + 16 * 1024 * 1024;

/** Runs a store's operations one after another (a failed one does not stop the next). */
export class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(fn);
    this.#tail = run.catch(() => undefined);
    return run;
  }
}
