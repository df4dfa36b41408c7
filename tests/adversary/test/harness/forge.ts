// What a malicious server can make on its own: identity keys and devices of
// its own (certified by its own key, for any user id it likes), and edits of
// the JSON it stores and serves.
import { randomUUID } from 'node:crypto';
import {
  certifyDevice,
  exportDevicePublicKeys,
  generateDeviceKeys,
  generateIdentityKey,
  toBase64Url,
  verifyDevice,
  verifyGroupChain,
  type Ed25519KeyPair,
  type GroupChain,
  type SignedEpochRecord,
  type VerifiedDevice,
} from '@bil/crypto';
import { inject } from 'vitest';
import type { Person } from './clients.js';
import type { Json } from './proxy.js';

/** The server reading its own data: a GET on the honest gateway with `as`'s current token. */
export async function serverGet(as: Person, path: string): Promise<Json> {
  const token = (await as.store.load())!.tokens!.accessToken;
  const res = await fetch(`${inject('gatewayUrl')}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

/** A directory entry (JSON) as a device record verified under `identityKey` (default: the one it names). */
export function verified(device: Json, identityKey: string): Promise<VerifiedDevice> {
  return verifyDevice(
    {
      user_id: device.user_id,
      device_id: device.device_id,
      identity_key: identityKey,
      encryption_key: device.encryption_key,
      signing_key: device.signing_key,
      issued_at: device.certificate_issued_at,
      certificate: device.certificate,
    },
    identityKey,
  );
}

/** `userId`'s real devices, verified under the identity key the directory really holds. */
export async function realDevices(as: Person, userId: string): Promise<VerifiedDevice[]> {
  const dir = await serverGet(as, `/v1/users/${userId}/devices`);
  return Promise.all((dir.devices as Json[]).map((d) => verified(d, dir.identity_key)));
}

/** A group's real epoch chain (what `as` may fetch), verified from genesis: what an insider would extend. */
export async function realChain(as: Person, chatId: string): Promise<{ chain: GroupChain; epochs: Json[] }> {
  const page = await serverGet(as, `/v1/chats/${chatId}/keys`);
  const chain = await verifyGroupChain((page.epochs as Json[]).map((e) => e.record as SignedEpochRecord), { chatId });
  return { chain, epochs: page.epochs };
}

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
