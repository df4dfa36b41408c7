import { beforeAll, describe, expect, it } from 'vitest';
import {
  certifyDevice,
  createAccountIdentity,
  deviceCertificatePayload,
  linkDevice,
  selectCertifiedDevices,
  verifyDevice,
  verifyDeviceCertificate,
  isVerifiedDevice,
  type DeviceRecord,
} from './certificate.js';
import { fromBase64Url, fromUtf8, toBase64Url } from './encoding.js';
import { CannotDecryptError } from './errors.js';
import { exportDevicePublicKeys, type DeviceKeyPair } from './keys.js';
import { ed25519Verify } from './signature.js';
import { flipBit, keyPool, uuid } from './testing/fixtures.js';

let pool: DeviceKeyPair[];
const userId = uuid(1);
beforeAll(async () => {
  pool = await keyPool();
});

describe('device certificates (property 5)', () => {
  it('has exactly the docs/protocol.md format: identity key signs canonical JSON of the payload', () => {
    const { identity, certificate } = createAccountIdentity({ userId, device: exportDevicePublicKeys(pool[0]!), issuedAt: 1764100000000 });
    const payload = fromUtf8(deviceCertificatePayload(certificate));
    const pub = exportDevicePublicKeys(pool[0]!);
    expect(payload).toBe(
      `{"encryption_key":"${pub.encryption_key}","identity_key":"${toBase64Url(identity.publicKey)}","issued_at":1764100000000,"signing_key":"${pub.signing_key}","type":"bil.device-certificate.v1","user_id":"${userId}"}`,
    );
    expect(ed25519Verify(identity.publicKey, deviceCertificatePayload(certificate), fromBase64Url(certificate.certificate))).toBe(true);
    expect(() => verifyDeviceCertificate(certificate)).not.toThrow();
  });

  it('first device, linking a device, and identity reset', async () => {
    const first = createAccountIdentity({ userId, device: exportDevicePublicKeys(pool[0]!), issuedAt: 1 });
    const linked = linkDevice({ identity: first.identity, userId, newDevice: exportDevicePublicKeys(pool[1]!), issuedAt: 2 });
    const pinned = toBase64Url(first.identity.publicKey);
    const d1 = await verifyDevice({ ...first.certificate, device_id: uuid(11) }, pinned);
    const d2 = await verifyDevice({ ...linked, device_id: uuid(12) }, pinned);
    expect(isVerifiedDevice(d1) && isVerifiedDevice(d2)).toBe(true);
    // After a reset the old pin no longer vouches for the new device, and vice versa.
    const reset = createAccountIdentity({ userId, device: exportDevicePublicKeys(pool[1]!), issuedAt: 3 });
    await expect(verifyDevice({ ...reset.certificate, device_id: uuid(12) }, pinned)).rejects.toThrow(CannotDecryptError);
    await expect(verifyDevice({ ...linked, device_id: uuid(12) }, reset.identity.publicKey)).rejects.toThrow(CannotDecryptError);
    await verifyDevice({ ...reset.certificate, device_id: uuid(12) }, reset.identity.publicKey);
  });

  it('rejects any changed field', async () => {
    const { identity, certificate } = createAccountIdentity({ userId, device: exportDevicePublicKeys(pool[0]!), issuedAt: 5 });
    const other = exportDevicePublicKeys(pool[1]!);
    const bad: DeviceRecord[] = [
      { ...certificate, device_id: uuid(2), user_id: uuid(2) },
      { ...certificate, device_id: uuid(2), encryption_key: other.encryption_key },
      { ...certificate, device_id: uuid(2), signing_key: other.signing_key },
      { ...certificate, device_id: uuid(2), issued_at: 6 },
      { ...certificate, device_id: uuid(2), certificate: flipBit(certificate.certificate, 0) },
      { ...certificate, device_id: uuid(2), certificate: flipBit(certificate.certificate, 511) },
      { ...certificate, device_id: uuid(2), certificate: certificate.certificate.slice(0, -2) },
    ];
    for (const r of bad) await expect(verifyDevice(r, identity.publicKey)).rejects.toThrow(CannotDecryptError);
  });

  it('a device the server added on its own gets nothing: it is not certified by the pinned key', async () => {
    const { identity, certificate } = createAccountIdentity({ userId, device: exportDevicePublicKeys(pool[0]!), issuedAt: 5 });
    const server = createAccountIdentity({ userId, device: exportDevicePublicKeys(pool[2]!), issuedAt: 5 });
    const records: DeviceRecord[] = [
      { ...certificate, device_id: uuid(21) },
      // the server's device claims the real identity key but is signed by its own
      { ...server.certificate, identity_key: certificate.identity_key, device_id: uuid(22) },
      // or presents its own identity key
      { ...server.certificate, device_id: uuid(23) },
    ];
    const { certified, rejected } = await selectCertifiedDevices(records, identity.publicKey);
    expect(certified.map((d) => d.deviceId)).toEqual([uuid(21)]);
    expect(rejected).toEqual([uuid(22), uuid(23)]);
  });

  it('refuses a small-order signing key and malformed ids at entry', () => {
    const { identity } = createAccountIdentity({ userId, device: exportDevicePublicKeys(pool[0]!), issuedAt: 5 });
    const smallOrder = toBase64Url(new Uint8Array(32).fill(0).map((_, i) => (i === 0 ? 1 : 0)));
    expect(() => certifyDevice({ identity, userId, device: { ...exportDevicePublicKeys(pool[0]!), signing_key: smallOrder }, issuedAt: 1 })).toThrow();
    expect(() => certifyDevice({ identity, userId: 'not-a-uuid', device: exportDevicePublicKeys(pool[0]!), issuedAt: 1 })).toThrow(TypeError);
    expect(() => certifyDevice({ identity, userId, device: exportDevicePublicKeys(pool[0]!), issuedAt: 1.5 })).toThrow(TypeError);
  });
});
