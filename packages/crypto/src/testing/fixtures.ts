// Test support (excluded from the build): a shared pool of device keys and
// helpers that make users with certified devices.
import { readFileSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { certifyDevice, verifyDevice, type DeviceRecord, type VerifiedDevice } from '../certificate.js';
import { fromBase64Url, toBase64Url, utf8 } from '../encoding.js';
import type { LocalDevice } from '../envelope.js';
import { exportDevicePublicKeys, importDevicePrivateKeys, type DeviceKeyPair } from '../keys.js';
import { generateEd25519KeyPair, type Ed25519KeyPair } from '../signature.js';

/** A deterministic UUID (version 4 layout) for test ids. */
export function uuid(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** A deterministic 32-byte seed from a label. */
export function seed(label: string): Uint8Array {
  return sha256(utf8(label));
}

let pool: Promise<DeviceKeyPair[]> | undefined;

/** The fixture RSA keys with deterministic Ed25519 keys, imported once per test file. */
export function keyPool(): Promise<DeviceKeyPair[]> {
  pool ??= (async () => {
    const file = JSON.parse(readFileSync(new URL('../../test/fixtures/device-keys.json', import.meta.url), 'utf8')) as { rsa_pkcs8: string[] };
    return Promise.all(
      file.rsa_pkcs8.map((pkcs8, i) =>
        importDevicePrivateKeys({ version: 1, encryption_key_pkcs8: pkcs8, signing_key_seed: toBase64Url(seed(`pool-signing-${i}`)) }),
      ),
    );
  })();
  return pool;
}

export interface TestDevice {
  readonly local: LocalDevice;
  readonly record: DeviceRecord;
  readonly verified: VerifiedDevice;
}

export interface TestUser {
  readonly userId: string;
  readonly identity: Ed25519KeyPair;
  readonly devices: TestDevice[];
}

/** A user whose identity key certifies the given pool keys as devices. */
export async function makeUser(
  userNo: number,
  keys: readonly DeviceKeyPair[],
  options: { identity?: Ed25519KeyPair; issuedAt?: number } = {},
): Promise<TestUser> {
  const userId = uuid(userNo);
  const identity = options.identity ?? generateEd25519KeyPair(seed(`identity-${userNo}`));
  const devices: TestDevice[] = [];
  for (const [i, k] of keys.entries()) {
    const deviceId = uuid(userNo * 1000 + i + 1);
    const cert = certifyDevice({ identity, userId, device: exportDevicePublicKeys(k), issuedAt: options.issuedAt ?? 1764100000000 });
    const record: DeviceRecord = { ...cert, device_id: deviceId };
    devices.push({ local: { userId, deviceId, keys: k }, record, verified: await verifyDevice(record, identity.publicKey) });
  }
  return { userId, identity, devices };
}

/** Flips one bit of a base64url string's decoded bytes. */
export function flipBit(b64: string, bit: number): string {
  const bytes = fromBase64Url(b64);
  bytes[Math.floor(bit / 8) % bytes.length]! ^= 1 << bit % 8;
  return toBase64Url(bytes);
}
