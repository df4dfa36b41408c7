// Test-only helpers: a client's device keys and certificates made with
// node:crypto, exactly as docs/protocol.md specifies.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { certificatePayload } from './domain/validation.js';

export interface TestIdentity {
  privateKey: KeyObject;
  publicKey: string;
}

export interface TestDevice {
  encryptionKey: string;
  signingKey: string;
}

export function newIdentity(): TestIdentity {
  const kp = generateKeyPairSync('ed25519');
  return { privateKey: kp.privateKey, publicKey: kp.publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url') };
}

let rsaPool: string[] = [];

/** RSA keygen is slow; tests reuse a few keys (they only need valid ones). */
export function newDevice(): TestDevice {
  if (rsaPool.length < 3) {
    rsaPool.push(
      generateKeyPairSync('rsa', { modulusLength: 3072 }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64url'),
    );
  }
  const encryptionKey = rsaPool[Math.floor(Math.random() * rsaPool.length)]!;
  const signingKey = newIdentity().publicKey;
  return { encryptionKey, signingKey };
}

export function resetRsaPool(): void {
  rsaPool = [];
}

export function certify(identity: TestIdentity, userId: string, device: TestDevice, issuedAt = Date.now()) {
  const certificate = sign(
    null,
    certificatePayload({ userId, identityKey: identity.publicKey, encryptionKey: device.encryptionKey, signingKey: device.signingKey, issuedAt }),
    identity.privateKey,
  ).toString('base64url');
  return { identityKey: identity.publicKey, certificate, certificateIssuedAt: issuedAt };
}
