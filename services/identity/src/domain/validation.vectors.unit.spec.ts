// The published vectors in docs/testvectors/ (the ones @bil/crypto's
// vectors.unit.spec.ts rebuilds byte for byte) run through the identity
// service's own checks: the bytes it verifies a device certificate over are
// the vectors' signed text, every certificate and device list a client
// produced is accepted, and a change to either breaks both sides.
// Also here: what canonical JSON refuses is refused as invalid input.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDeviceList } from '../app/device-lists.js';
import { certificatePayload, validateEd25519Key, validateEncryptionKey, verifyCertificate, type CertificateFields } from './validation.js';

const dir = new URL('../../../../docs/testvectors/', import.meta.url);
const read = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as T;

interface CertificateRecord {
  user_id: string;
  identity_key: string;
  encryption_key: string;
  signing_key: string;
  issued_at: number;
  certificate: string;
  device_id: string;
}
const certificates = read<{ vectors: { owner: string; payload: string; record: CertificateRecord }[] }>('certificates.json');
const deviceLists = read<{ user_id: string; identity_key: string; vectors: { what: string; payload: string; list: { payload: Record<string, unknown>; signature: string } }[] }>(
  'device-list.json',
);

const fieldsOf = (r: CertificateRecord): CertificateFields => ({
  userId: r.user_id,
  identityKey: r.identity_key,
  encryptionKey: r.encryption_key,
  signingKey: r.signing_key,
  issuedAt: r.issued_at,
});

const errorOf = (fn: () => unknown): { kind?: string; code?: string; details?: Record<string, unknown> } => {
  try {
    fn();
    return {};
  } catch (err) {
    return err as { kind?: string; code?: string };
  }
};

describe('docs/testvectors in the identity service', () => {
  it('certificates.json: the server verifies over the vectors\' signed text, and accepts every certificate and key', () => {
    expect(certificates.vectors.length).toBeGreaterThanOrEqual(3);
    for (const v of certificates.vectors) {
      const f = fieldsOf(v.record);
      expect(certificatePayload(f).toString('utf8')).toBe(v.payload);
      expect(verifyCertificate(f, v.record.certificate)).toBe(v.record.certificate);
      expect(validateEd25519Key(v.record.signing_key, 'signing_key')).toBe(v.record.signing_key);
      expect(validateEd25519Key(v.record.identity_key, 'identity_key')).toBe(v.record.identity_key);
      expect(validateEncryptionKey(v.record.encryption_key)).toBe(v.record.encryption_key);
      expect(errorOf(() => verifyCertificate({ ...f, issuedAt: f.issuedAt + 1 }, v.record.certificate)).code).toBe('invalid_certificate');
    }
  });

  it('device-list.json: every list verifies under the account identity key, versions as signed', async () => {
    const ctx = { userId: deviceLists.user_id, identityKey: deviceLists.identity_key };
    for (const v of deviceLists.vectors) {
      const parsed = await parseDeviceList(JSON.stringify(v.list), ctx);
      expect(parsed?.version, v.what).toBe(v.list.payload.version);
      expect(JSON.parse(parsed!.text)).toEqual(v.list);
    }
  });
});

describe('what canonical JSON refuses, the identity service refuses with invalid_argument', () => {
  const record = certificates.vectors[0]!.record;

  it('certificate fields with a lone surrogate or an issued_at that is not a safe integer: invalid_certificate', () => {
    for (const f of [{ ...fieldsOf(record), userId: 'a\uD800' }, { ...fieldsOf(record), signingKey: '\uDC00' }, { ...fieldsOf(record), issuedAt: 1.5 }]) {
      expect(errorOf(() => certificatePayload(f))).toMatchObject({ kind: 'invalid_argument', code: 'invalid_certificate' });
      expect(errorOf(() => verifyCertificate(f, record.certificate))).toMatchObject({ kind: 'invalid_argument', code: 'invalid_certificate' });
    }
  });

  it('device lists with a lone surrogate, nesting deeper than 32 or an unknown member: invalid_device_list', async () => {
    const ctx = { userId: deviceLists.user_id, identityKey: deviceLists.identity_key };
    const list = deviceLists.vectors[0]!.list;
    const deep = (n: number): unknown => (n === 0 ? 'x' : [deep(n - 1)]);
    for (const text of [
      JSON.stringify(list).replace(deviceLists.user_id, '\\ud800'),
      JSON.stringify({ ...list, payload: { ...list.payload, devices: deep(40) } }),
      JSON.stringify({ ...list, payload: { ...list.payload, '\uDC00': 1 } }),
    ]) {
      await expect(parseDeviceList(text, ctx)).rejects.toMatchObject({ kind: 'invalid_argument', code: 'invalid_device_list' });
    }
  });
});
