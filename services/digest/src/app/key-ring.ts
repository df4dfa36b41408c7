// The digest service's keys at run time: issues and rotates RSA-OAEP-3072
// encryption keys signed by the service identity key, stores their private
// halves encrypted under the key-encryption key (AES-256-GCM, the key id as
// associated data, so a stored key can't be swapped for another), and hands
// the worker the private key a sealed request names. Private keys never
// leave this module: not in logs, events (only encrypted), or errors.
import { createCipheriv, createDecipheriv, generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { fromBase64Url, importEncryptionPrivateKey, sealKeyId, signServiceKey, toBase64Url, type Ed25519KeyPair } from '@bil/crypto';
import type { EventStore } from '@bil/runtime';
import { currentKey, KEYS_STREAM, keysDecider, openableKeys, type IssuedKey, type KeysState, type RotationReason } from '../domain/keys/keys.js';

const generateRsa = promisify(generateKeyPair);
const NONCE = 12;
const TAG = 16;
const wrapAad = (keyId: string) => Buffer.from(`bil.digest-key-wrap.v1:${keyId}`, 'utf8');

export interface KeyRingOptions {
  identity: Ed25519KeyPair;
  /** 32-byte key-encryption key. */
  kek: Uint8Array;
  ttlMs: number;
  graceMs: number;
}

export class KeyRing {
  private readonly privateKeys = new Map<string, CryptoKey>();
  /**
   * The keys stream as last read, for the worker's per-job lookup. Keys are
   * only ever added and each one's openability depends on its own expiry
   * alone, so a cached state never opens with a key the stored one would
   * refuse; an unknown key id reads the stream again.
   */
  private known?: KeysState;

  constructor(
    private readonly store: EventStore,
    private readonly opts: KeyRingOptions,
  ) {
    if (opts.kek.length !== 32) throw new RangeError('key-encryption key: expected 32 bytes');
  }

  /** The service identity public key, base64url (what clients pin). */
  get identityKey(): string {
    return toBase64Url(this.opts.identity.publicKey);
  }

  async state(): Promise<KeysState> {
    return (await this.store.load(this.store.db, keysDecider, KEYS_STREAM)).state;
  }

  async current(now = Date.now()): Promise<IssuedKey | undefined> {
    const key = currentKey(await this.state());
    return key && key.expiresAt > now ? key : undefined;
  }

  /** Ids of the keys a request may be sealed to at `now` (current and not yet past their grace period). */
  async openableKeyIds(now = Date.now()): Promise<Set<string>> {
    return new Set(openableKeys(await this.state(), now, this.opts.graceMs).map((k) => k.keyId));
  }

  /**
   * Issues the first key, or a new one when the current key has less than a
   * quarter of its lifetime left. Every replica calls this at start and
   * periodically; the stream's version check lets exactly one of them issue.
   */
  async ensureFresh(now = Date.now()): Promise<boolean> {
    const cur = currentKey(await this.state());
    if (cur && cur.expiresAt - now > this.opts.ttlMs / 4) return false;
    return this.issue(now, this.opts.ttlMs / 4);
  }

  /** Issues a new current key now (the `rotate-key` command). Older keys keep opening requests until they expire. */
  async rotate(now = Date.now()): Promise<IssuedKey> {
    await this.issue(now);
    return currentKey(await this.state())!;
  }

  private async issue(now: number, onlyIfRemainingBelowMs?: number): Promise<boolean> {
    const key = await this.newKey(now);
    const { events } = await this.store.handle(keysDecider, KEYS_STREAM, { type: 'RotateKey', key, onlyIfRemainingBelowMs, now });
    return events.length > 0;
  }

  private async newKey(now: number): Promise<IssuedKey> {
    const { publicKey, privateKey } = await generateRsa('rsa', {
      modulusLength: 3072,
      publicExponent: 0x10001,
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'der' },
    });
    const spki = new Uint8Array(publicKey);
    const keyId = await sealKeyId(spki);
    const expiresAt = now + this.opts.ttlMs;
    const signed = await signServiceKey({ identity: this.opts.identity, service: 'digest', encryptionKey: spki, issuedAt: now, expiresAt });
    try {
      return {
        keyId,
        spki: toBase64Url(spki),
        signedKey: JSON.stringify(signed),
        encryptedPrivateKey: this.wrap(keyId, privateKey),
        issuedAt: now,
        expiresAt,
      };
    } finally {
      privateKey.fill(0);
    }
  }

  /** Whether a request may be sealed to `keyId` at `now` (as {@link openableKeyIds}, from the keys as last read; an unknown id reads them again). */
  async isOpenable(keyId: string, now = Date.now()): Promise<boolean> {
    return (await this.openable(keyId, now)) !== undefined;
  }

  private async openable(keyId: string, now: number): Promise<IssuedKey | undefined> {
    const find = (s: KeysState | undefined) => (s ? openableKeys(s, now, this.opts.graceMs).find((k) => k.keyId === keyId) : undefined);
    const key = find(this.known);
    if (key || this.known?.keys.some((k) => k.keyId === keyId)) return key; // known: open or expired for good
    this.known = await this.state();
    return find(this.known);
  }

  /** The private key for a sealed request's `key_id`, if that key may still open requests. */
  async privateKey(keyId: string, now = Date.now()): Promise<CryptoKey | undefined> {
    const cached = this.privateKeys.get(keyId);
    const key = await this.openable(keyId, now);
    if (!key) {
      this.privateKeys.delete(keyId);
      return undefined;
    }
    if (cached) return cached;
    const pkcs8 = this.unwrap(keyId, key.encryptedPrivateKey);
    try {
      const imported = await importEncryptionPrivateKey(pkcs8, { extractable: false });
      this.privateKeys.set(keyId, imported);
      return imported;
    } finally {
      pkcs8.fill(0);
    }
  }

  private wrap(keyId: string, pkcs8: Uint8Array): string {
    const nonce = randomBytes(NONCE);
    const cipher = createCipheriv('aes-256-gcm', this.opts.kek, nonce, { authTagLength: TAG });
    cipher.setAAD(wrapAad(keyId));
    const body = Buffer.concat([cipher.update(pkcs8), cipher.final()]);
    return toBase64Url(Buffer.concat([nonce, body, cipher.getAuthTag()]));
  }

  private unwrap(keyId: string, wrapped: string): Uint8Array {
    const bytes = fromBase64Url(wrapped);
    const decipher = createDecipheriv('aes-256-gcm', this.opts.kek, bytes.subarray(0, NONCE), { authTagLength: TAG });
    decipher.setAAD(wrapAad(keyId));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG));
    try {
      return new Uint8Array(Buffer.concat([decipher.update(bytes.subarray(NONCE, bytes.length - TAG)), decipher.final()]));
    } catch {
      // Fixed message: the usual cause is a DIGEST_KEY_ENCRYPTION_KEY that differs from the one the key was stored with.
      throw new Error('a stored digest key does not decrypt with DIGEST_KEY_ENCRYPTION_KEY');
    }
  }
}

export type { RotationReason };
