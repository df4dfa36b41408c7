// What a malicious server can make on its own: identity keys and devices of
// its own (certified by its own key, for any user id it likes), and edits of
// the JSON it stores and serves.
import { randomUUID } from 'node:crypto';
import { certifyDevice, exportDevicePublicKeys, generateDeviceKeys, generateIdentityKey, toBase64Url, type Ed25519KeyPair } from '@bil/crypto';
import type { Json } from './proxy.js';

export interface ServerIdentity {
  readonly pair: Ed25519KeyPair;
  /** The public key, base64url, as the directory serves identity keys. */
  readonly key: string;
}

/** An identity key the server made (the private half is the server's). */
export function serverIdentity(): ServerIdentity {
  const pair = generateIdentityKey();
  return { pair, key: toBase64Url(pair.publicKey) };
}

/**
 * A device the server made for `userId`, in the directory's JSON shape:
 * fresh keys, certified by `identity` (the server's own key unless a test
 * passes a stolen one).
 */
export async function serverDevice(userId: string, identity: ServerIdentity, name = 'server-made'): Promise<Json> {
  const keys = await generateDeviceKeys();
  const cert = certifyDevice({ identity: identity.pair, userId, device: exportDevicePublicKeys(keys), issuedAt: Date.now() });
  return {
    device_id: randomUUID(),
    user_id: userId,
    name,
    encryption_key: cert.encryption_key,
    signing_key: cert.signing_key,
    certificate: cert.certificate,
    certificate_issued_at: cert.issued_at,
    created_at: new Date().toISOString(),
  };
}

/** A base64url string with one character changed (still valid base64url of the same length). */
export function flip(b64: string, at = 10): string {
  const c = b64[at] === 'A' ? 'B' : 'A';
  return b64.slice(0, at) + c + b64.slice(at + 1);
}

/** A deep copy of JSON. */
export const copy = <T>(v: T): T => structuredClone(v);
