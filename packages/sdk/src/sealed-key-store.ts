// A key store for any place that keeps one string (IndexedDB in a browser, a
// test's memory): the profile sealed under a passphrase in exactly
// FileKeyStore's format (scrypt, RFC 7914, then AES-256-GCM with the header's
// canonical JSON as associated data; docs/sdk.md "File key store format").
// Browser-safe: scrypt from @noble/hashes, AES-GCM from WebCrypto with a
// non-extractable key; no Node built-ins.
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { randomBytes, toBase64Url } from '@bil/crypto';
import { KeyStoreFormatError, WrongPassphraseError } from './errors.js';
import { parseProfile, type KeyStore, type StoredProfile } from './key-store.js';
import {
  KEY_STORE_FORMAT,
  MIN_SCRYPT_LOG2N,
  associatedData,
  checkLog2N,
  decodeField,
  headerOf,
  sameKdf,
  scryptMaxmem,
  SerialQueue,
  type KdfParams,
  type KeyStoreFile,
  type KeyStoreHeader,
} from './key-store-format.js';

/** Where a {@link SealedKeyStore} keeps its one sealed text (the file format's JSON). */
export interface SealedStorage {
  /** The stored text, or null when there is none. */
  read(): Promise<string | null>;
  /** Replaces the stored text, atomically. */
  write(text: string): Promise<void>;
  remove(): Promise<void>;
}

/** A {@link SealedStorage} in memory (tests, or a page that keeps nothing). */
export class MemorySealedStorage implements SealedStorage {
  text: string | null = null;
  async read(): Promise<string | null> {
    return this.text;
  }
  async write(text: string): Promise<void> {
    this.text = text;
  }
  async remove(): Promise<void> {
    this.text = null;
  }
}

const encoder = new TextEncoder();

/**
 * Any JSON value kept in a {@link SealedStorage}, encrypted under a passphrase
 * in FileKeyStore's format; `parse` checks what was decrypted (and what is
 * saved). An app keeps its own secrets beside the SDK's profile with it
 * (e.g. the names it learned for user ids). A wrong passphrase, or any change
 * to the stored text, is {@link WrongPassphraseError}.
 */
export class SealedJsonStore<T> {
  readonly #storage: SealedStorage;
  readonly #passphrase: Uint8Array;
  readonly #log2n: number;
  readonly #parse: (value: unknown) => T;
  /** The KDF parameters and derived (non-extractable) key of the stored text, so saves don't pay for scrypt again. */
  #key: { kdf: KdfParams; key: CryptoKey } | null = null;
  readonly #queue = new SerialQueue();

  constructor(storage: SealedStorage, passphrase: string, options: { scryptLog2N?: number; parse: (value: unknown) => T }) {
    if (typeof passphrase !== 'string' || passphrase.length === 0) throw new TypeError('passphrase: expected a non-empty string');
    this.#storage = storage;
    this.#passphrase = encoder.encode(passphrase.normalize('NFKC'));
    this.#log2n = checkLog2N(options.scryptLog2N ?? MIN_SCRYPT_LOG2N);
    this.#parse = options.parse;
  }

  load(): Promise<T | null> {
    return this.#queue.run(() => this.#load());
  }

  save(profile: T): Promise<void> {
    return this.#queue.run(() => this.#save(profile));
  }

  clear(): Promise<void> {
    return this.#queue.run(async () => {
      await this.#storage.remove();
      this.#key = null;
    });
  }


  async #keyFor(kdf: KdfParams): Promise<CryptoKey> {
    const c = this.#key;
    if (c && sameKdf(c.kdf, kdf)) return c.key;
    const raw = await scryptAsync(this.#passphrase, decodeField(kdf.salt, 16, 'kdf salt'), {
      N: 2 ** kdf.log2n,
      r: kdf.r,
      p: kdf.p,
      dkLen: 32,
      maxmem: scryptMaxmem(kdf),
    });
    try {
      return await crypto.subtle.importKey('raw', new Uint8Array(raw), 'AES-GCM', false, ['encrypt', 'decrypt']);
    } finally {
      raw.fill(0);
    }
  }

  async #load(): Promise<T | null> {
    const text = await this.#storage.read();
    if (text === null) return null;
    let file: KeyStoreFile;
    try {
      file = JSON.parse(text) as KeyStoreFile;
    } catch {
      throw new KeyStoreFormatError('not JSON');
    }
    const header = headerOf(file);
    const sealed = decodeField(file.ciphertext, undefined, 'ciphertext');
    if (sealed.length < 16) throw new KeyStoreFormatError('ciphertext too short');
    const key = await this.#keyFor(header.kdf);
    let plaintext: Uint8Array;
    try {
      const iv = decodeField(header.cipher.nonce, 12, 'nonce');
      plaintext = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv, additionalData: associatedData(header), tagLength: 128 }, key, sealed));
    } catch {
      throw new WrongPassphraseError();
    }
    this.#key = { kdf: header.kdf, key };
    try {
      return this.#parse(JSON.parse(new TextDecoder().decode(plaintext)));
    } catch (err) {
      if (err instanceof KeyStoreFormatError) throw err;
      throw new KeyStoreFormatError('decrypted contents are not what was stored');
    } finally {
      plaintext.fill(0);
    }
  }

  async #save(profile: T): Promise<void> {
    this.#parse(profile);
    const kdf: KdfParams = this.#key?.kdf ?? { name: 'scrypt', log2n: this.#log2n, r: 8, p: 1, salt: toBase64Url(randomBytes(16)) };
    const key = await this.#keyFor(kdf);
    this.#key = { kdf, key };
    const header: KeyStoreHeader = { format: KEY_STORE_FORMAT, version: 1, kdf, cipher: { name: 'aes-256-gcm', nonce: toBase64Url(randomBytes(12)) } };
    const plaintext = encoder.encode(JSON.stringify(profile));
    let sealed: Uint8Array;
    try {
      const iv = decodeField(header.cipher.nonce, 12, 'nonce');
      sealed = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: associatedData(header), tagLength: 128 }, key, plaintext));
    } finally {
      plaintext.fill(0);
    }
    const file: KeyStoreFile = { ...header, ciphertext: toBase64Url(sealed) };
    await this.#storage.write(`${JSON.stringify(file, null, 2)}\n`);
  }
}

/**
 * A {@link KeyStore} over a {@link SealedStorage}, encrypted under a
 * passphrase in FileKeyStore's format (a file written by one opens with the
 * other). A wrong passphrase, or any change to the stored text, is
 * {@link WrongPassphraseError}.
 * @example
 * const keyStore = new SealedKeyStore(myIndexedDbStorage, passphrase);
 * const client = new BilClient({ baseUrl: location.origin, keyStore });
 */
export class SealedKeyStore extends SealedJsonStore<StoredProfile> implements KeyStore {
  constructor(storage: SealedStorage, passphrase: string, options: { scryptLog2N?: number } = {}) {
    super(storage, passphrase, { ...options, parse: parseProfile });
  }
}
