import { canonicalBytes } from './canonical-json.js';
import { abytes, assertUint, assertUuid, equalBytes, fromBase64Url, isUuid, toBase64Url } from './encoding.js';
import { fail, failClosed, failClosedSync } from './errors.js';
import { importEncryptionPublicKey, parseSigningKey, type DevicePublicKeys } from './keys.js';
import { ED25519_SIGNATURE_LENGTH, ed25519Sign, ed25519Verify, generateEd25519KeyPair, type Ed25519KeyPair } from './signature.js';
import { DEVICE_CERTIFICATE_TYPE, type DEVICE_CERTIFICATE_FIELDS, type FieldName } from './signed-fields.js';

/** The `type` of a device-certificate payload (docs/protocol.md; defined in signed-fields.ts). */
export { DEVICE_CERTIFICATE_TYPE };

/** A device certificate as registered with, and served by, the identity service. */
export interface DeviceCertificate {
  readonly user_id: string;
  /** Account identity public key, raw 32 bytes, base64url. */
  readonly identity_key: string;
  /** Device RSA SPKI DER, base64url. */
  readonly encryption_key: string;
  /** Device Ed25519 public key, raw 32 bytes, base64url. */
  readonly signing_key: string;
  /** Milliseconds since the Unix epoch. */
  readonly issued_at: number;
  /** Ed25519 signature by the identity key over the canonical payload, base64url. */
  readonly certificate: string;
}

/** A device as the key directory lists it: its certificate plus the device id. */
export interface DeviceRecord extends DeviceCertificate {
  readonly device_id: string;
}

/**
 * A device whose certificate verified under the identity key the caller pinned.
 * Only {@link verifyDevice} makes these; encryption functions refuse anything
 * else, so keys are never wrapped for a device the server made up.
 */
export interface VerifiedDevice {
  readonly userId: string;
  readonly deviceId: string;
  readonly identityKey: string;
  readonly encryptionKey: string;
  readonly signingKey: string;
  readonly issuedAt: number;
  readonly certificate: string;
}

interface DeviceMaterial {
  readonly encryptionKey: CryptoKey;
  readonly signingKey: Uint8Array;
}

const verified = new WeakMap<VerifiedDevice, DeviceMaterial>();

/** The imported keys of a {@link VerifiedDevice}; throws for any other object. @internal */
export function deviceMaterial(device: VerifiedDevice): DeviceMaterial {
  const m = typeof device === 'object' && device !== null ? verified.get(device) : undefined;
  if (!m) throw new TypeError('device: not a VerifiedDevice (use verifyDevice)');
  return m;
}

/**
 * True if `value` came from {@link verifyDevice}.
 * @example
 * if (!isVerifiedDevice(device)) throw new Error('verify it first');
 */
export function isVerifiedDevice(value: unknown): value is VerifiedDevice {
  return typeof value === 'object' && value !== null && verified.has(value as VerifiedDevice);
}

/**
 * The exact bytes the identity key signs: canonical JSON of the payload object
 * (RFC 8785), UTF-8.
 * @example
 * ed25519Verify(identityKey, deviceCertificatePayload(cert), fromBase64Url(cert.certificate));
 */
export function deviceCertificatePayload(fields: Omit<DeviceCertificate, 'certificate'>): Uint8Array {
  const payload: Record<FieldName<typeof DEVICE_CERTIFICATE_FIELDS>, string | number> = {
    type: DEVICE_CERTIFICATE_TYPE,
    user_id: fields.user_id,
    identity_key: fields.identity_key,
    encryption_key: fields.encryption_key,
    signing_key: fields.signing_key,
    issued_at: fields.issued_at,
  };
  return canonicalBytes(payload);
}

/**
 * Signs a device's public keys with the account identity key. Used for the
 * first device, for linking a new device (the existing device signs the keys
 * it received out of band), and after an identity reset.
 * @example
 * const cert = certifyDevice({ identity, userId, device: exportDevicePublicKeys(keys), issuedAt: Date.now() });
 */
export function certifyDevice(params: { identity: Ed25519KeyPair; userId: string; device: DevicePublicKeys; issuedAt: number }): DeviceCertificate {
  const { identity, userId, device, issuedAt } = params;
  abytes(identity?.secretKey, 32, 'identity.secretKey');
  abytes(identity.publicKey, 32, 'identity.publicKey');
  assertUuid(userId, 'userId');
  assertUint(issuedAt, 'issuedAt');
  fromBase64Url(device.encryption_key);
  parseSigningKey(device.signing_key);
  const fields = {
    user_id: userId,
    identity_key: toBase64Url(identity.publicKey),
    encryption_key: device.encryption_key,
    signing_key: device.signing_key,
    issued_at: issuedAt,
  };
  return { ...fields, certificate: toBase64Url(ed25519Sign(identity.secretKey, deviceCertificatePayload(fields))) };
}

/**
 * First device of an account, or an identity reset: creates a new identity key
 * and certifies this device with it. Register `identity_key` and `certificate`
 * (with `reset_identity: true` for a reset); keep `identity` in the key store.
 * @example
 * const { identity, certificate } = createAccountIdentity({ userId, device: exportDevicePublicKeys(keys), issuedAt: Date.now() });
 */
export function createAccountIdentity(params: { userId: string; device: DevicePublicKeys; issuedAt: number }): {
  identity: Ed25519KeyPair;
  certificate: DeviceCertificate;
} {
  const identity = generateEd25519KeyPair();
  return { identity, certificate: certifyDevice({ identity, ...params }) };
}

/**
 * Links a new device: an existing device holding the identity key certifies the
 * public keys the new device showed it (e.g. in a QR code).
 * @example
 * const cert = linkDevice({ identity, userId, newDevice: scannedPublicKeys, issuedAt: Date.now() });
 */
export function linkDevice(params: { identity: Ed25519KeyPair; userId: string; newDevice: DevicePublicKeys; issuedAt: number }): DeviceCertificate {
  return certifyDevice({ identity: params.identity, userId: params.userId, device: params.newDevice, issuedAt: params.issuedAt });
}

/**
 * Checks a certificate's encodings and its identity-key signature (strict
 * RFC 8032 verification). Does not parse the RSA key; {@link verifyDevice}
 * does. Throws {@link CannotDecryptError} on any failure.
 * @example
 * verifyDeviceCertificate(cert); // throws unless the identity key signed these keys
 */
export function verifyDeviceCertificate(cert: DeviceCertificate): void {
  failClosedSync(() => {
    if (typeof cert !== 'object' || cert === null) fail();
    if (!isUuid(cert.user_id)) fail();
    if (!Number.isSafeInteger(cert.issued_at) || cert.issued_at < 0) fail();
    if (typeof cert.encryption_key !== 'string' || fromBase64Url(cert.encryption_key).length === 0) fail();
    parseSigningKey(cert.signing_key);
    const identityKey = parseSigningKey(cert.identity_key);
    const sig = fromBase64Url(cert.certificate, ED25519_SIGNATURE_LENGTH);
    if (!ed25519Verify(identityKey, deviceCertificatePayload(cert), sig)) fail();
  });
}

/**
 * Verifies a directory record against the identity key the caller pinned for
 * that user, imports its keys (RSA ≥ 3072 bits, e = 65537; valid Ed25519 point)
 * and returns a {@link VerifiedDevice}. Throws {@link CannotDecryptError} if the
 * record's identity key isn't the pinned one, or anything else fails.
 * @example
 * const device = await verifyDevice(record, pins.pinned(record.user_id)!);
 */
export async function verifyDevice(record: DeviceRecord, pinnedIdentityKey: string | Uint8Array): Promise<VerifiedDevice> {
  return failClosed(async () => {
    if (typeof record !== 'object' || record === null || !isUuid(record.device_id)) fail();
    const pinned = typeof pinnedIdentityKey === 'string' ? fromBase64Url(pinnedIdentityKey, 32) : pinnedIdentityKey;
    if (!equalBytes(pinned, fromBase64Url(record.identity_key, 32))) fail();
    verifyDeviceCertificate(record);
    const encryptionKey = await importEncryptionPublicKey(record.encryption_key);
    const device: VerifiedDevice = Object.freeze({
      userId: record.user_id,
      deviceId: record.device_id,
      identityKey: record.identity_key,
      encryptionKey: record.encryption_key,
      signingKey: record.signing_key,
      issuedAt: record.issued_at,
      certificate: record.certificate,
    });
    verified.set(device, { encryptionKey, signingKey: parseSigningKey(record.signing_key) });
    return device;
  });
}

/**
 * Splits the devices the server lists for a user into those certified by the
 * pinned identity key and the ids of those that are not (e.g. a device the
 * server added on its own). Send only to `certified`; surface `rejected`.
 * @example
 * const { certified, rejected } = await selectCertifiedDevices(records, pinnedKey);
 */
export async function selectCertifiedDevices(
  records: readonly DeviceRecord[],
  pinnedIdentityKey: string | Uint8Array,
): Promise<{ certified: VerifiedDevice[]; rejected: string[] }> {
  const certified: VerifiedDevice[] = [];
  const rejected: string[] = [];
  for (const record of records) {
    try {
      certified.push(await verifyDevice(record, pinnedIdentityKey));
    } catch {
      rejected.push(typeof record?.device_id === 'string' ? record.device_id : '');
    }
  }
  return { certified, rejected };
}

/**
 * A {@link DeviceRecord} for a verified device (what group records list).
 * @example
 * const record = deviceRecordOf(await verifyDevice(raw, pinned));
 */
export function deviceRecordOf(device: VerifiedDevice): DeviceRecord {
  deviceMaterial(device);
  return {
    user_id: device.userId,
    device_id: device.deviceId,
    identity_key: device.identityKey,
    encryption_key: device.encryptionKey,
    signing_key: device.signingKey,
    issued_at: device.issuedAt,
    certificate: device.certificate,
  };
}
