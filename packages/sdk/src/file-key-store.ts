// A key store in one file, for Node: the profile is encrypted at rest under a
// passphrase (scrypt, RFC 7914, then AES-256-GCM with the file header as
// associated data) and replaced atomically (temp file + rename, mode 0600).
// File format: docs/sdk.md "Key store format".
import { createCipheriv, createDecipheriv, randomBytes, scrypt as scryptCb, type ScryptOptions } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { KeyStoreFormatError, WrongPassphraseError } from './errors.js';
import { parseProfile, type KeyStore, type StoredProfile } from './key-store.js';
import {
  KEY_STORE_FORMAT,
  MIN_SCRYPT_LOG2N,
  associatedData as formatAssociatedData,
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

export { KEY_STORE_FORMAT, MIN_SCRYPT_LOG2N, type KeyStoreHeader } from './key-store-format.js';

function scrypt(password: Buffer, salt: Buffer, p: KdfParams): Promise<Buffer> {
  const N = 2 ** p.log2n;
  const options: ScryptOptions = { N, r: p.r, p: p.p, maxmem: scryptMaxmem(p) };
  return new Promise((resolve, reject) => scryptCb(password, salt, 32, options, (err, key) => (err ? reject(err) : resolve(key))));
}

const b64 = (b: Buffer): string => b.toString('base64url');

const fromB64 = (text: unknown, length: number | undefined, what: string): Buffer => Buffer.from(decodeField(text, length, what));
const associatedData = (h: KeyStoreHeader): Buffer => Buffer.from(formatAssociatedData(h));

/**
 * A {@link KeyStore} kept in one file, encrypted under a passphrase. A wrong
 * passphrase (or any change to the file) is {@link WrongPassphraseError}.
 * @example
 * import { FileKeyStore } from '@bil/sdk/node';
 * const keyStore = new FileKeyStore(`${homedir()}/.bil/alice.json`, process.env.BIL_PASSPHRASE!);
 */
export class FileKeyStore implements KeyStore {
  readonly path: string;
  readonly #passphrase: Buffer;
  readonly #log2n: number;
  /** The KDF parameters and derived key of the current file, so saves don't pay for scrypt again. */
  #key: { kdf: KdfParams; key: Buffer } | null = null;
  readonly #queue = new SerialQueue();

  constructor(path: string, passphrase: string, options: { scryptLog2N?: number } = {}) {
    if (typeof path !== 'string' || path === '') throw new TypeError('path: expected a file path');
    if (typeof passphrase !== 'string' || passphrase.length === 0) throw new TypeError('passphrase: expected a non-empty string');
    const log2n = options.scryptLog2N ?? MIN_SCRYPT_LOG2N;
    checkLog2N(log2n);
    this.path = path;
    this.#passphrase = Buffer.from(passphrase.normalize('NFKC'), 'utf8');
    this.#log2n = log2n;
  }

  load(): Promise<StoredProfile | null> {
    return this.#queue.run(() => this.#load());
  }

  save(profile: StoredProfile): Promise<void> {
    return this.#queue.run(() => this.#save(profile));
  }

  clear(): Promise<void> {
    return this.#queue.run(async () => {
      await unlink(this.path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      this.#key?.key.fill(0);
      this.#key = null;
    });
  }


  async #keyFor(kdf: KdfParams): Promise<Buffer> {
    const c = this.#key;
    if (c && sameKdf(c.kdf, kdf)) return c.key;
    const key = await scrypt(this.#passphrase, fromB64(kdf.salt, 16, 'kdf salt'), kdf);
    return key;
  }

  async #load(): Promise<StoredProfile | null> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    let file: KeyStoreFile;
    try {
      file = JSON.parse(text) as KeyStoreFile;
    } catch {
      throw new KeyStoreFormatError('not JSON');
    }
    const header = headerOf(file);
    const sealed = fromB64(file.ciphertext, undefined, 'ciphertext');
    if (sealed.length < 16) throw new KeyStoreFormatError('ciphertext too short');
    const key = await this.#keyFor(header.kdf);
    let plaintext: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, fromB64(header.cipher.nonce, 12, 'nonce'), { authTagLength: 16 });
      decipher.setAAD(associatedData(header));
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      plaintext = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
    } catch {
      throw new WrongPassphraseError();
    }
    this.#key = { kdf: header.kdf, key };
    try {
      return parseProfile(JSON.parse(plaintext.toString('utf8')));
    } catch (err) {
      if (err instanceof KeyStoreFormatError) throw err;
      throw new KeyStoreFormatError('decrypted contents are not a profile');
    } finally {
      plaintext.fill(0);
    }
  }

  async #save(profile: StoredProfile): Promise<void> {
    parseProfile(profile);
    const kdf: KdfParams = this.#key?.kdf ?? { name: 'scrypt', log2n: this.#log2n, r: 8, p: 1, salt: b64(randomBytes(16)) };
    const key = await this.#keyFor(kdf);
    this.#key = { kdf, key };
    const header: KeyStoreHeader = {
      format: KEY_STORE_FORMAT,
      version: 1,
      kdf,
      cipher: { name: 'aes-256-gcm', nonce: b64(randomBytes(12)) },
    };
    const plaintext = Buffer.from(JSON.stringify(profile), 'utf8');
    let sealed: Buffer;
    try {
      const cipher = createCipheriv('aes-256-gcm', key, fromB64(header.cipher.nonce, 12, 'nonce'), { authTagLength: 16 });
      cipher.setAAD(associatedData(header));
      sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    } finally {
      plaintext.fill(0);
    }
    const file: KeyStoreFile = { ...header, ciphertext: b64(sealed) };
    await writeAtomically(this.path, `${JSON.stringify(file, null, 2)}\n`);
  }
}

/** Writes a temp file beside `path` (mode 0600), flushes it, and renames it over `path`. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  // Make the rename itself durable; not every platform lets a directory be opened for fsync.
  const dirHandle = await open(dir, 'r').catch(() => null);
  if (dirHandle) await dirHandle.sync().catch(() => undefined).finally(() => dirHandle.close());
}
