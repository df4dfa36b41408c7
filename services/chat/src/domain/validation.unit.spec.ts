import { describe, expect, it } from 'vitest';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { canonicalize, epochSignatureValid, parseEnvelope, parseEpochRecord, personalChatId, validateWrappedKeys } from './validation.js';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code;
  }
};
const b64 = (n: number) => Buffer.alloc(n, 7).toString('base64url');
const header = {
  v: 1, suite: 'aes-256-gcm', chat_id: '0193c2a0-0000-7000-8000-000000000001', message_id: '0193c2a0-0000-7000-8000-000000000002',
  sender_user_id: '0193c2a0-0000-7000-8000-000000000003', sender_device_id: '0193c2a0-0000-7000-8000-000000000004',
  scheme: 'direct', epoch: 0, counter: 1, timestamp: 1764100001000, nonce: b64(12), commitment: b64(32),
};
const env = (over: Record<string, unknown> = {}, h: Record<string, unknown> = {}) =>
  JSON.stringify({ header: { ...header, ...h }, ciphertext: b64(272), signature: b64(64), ...over });

describe('envelope structure', () => {
  it('accepts the protocol shape', () => expect(parseEnvelope(env()).header.chat_id).toBe(header.chat_id));
  it('refuses wrong types, extra or missing members and bad encodings', () => {
    expect(codeOf(() => parseEnvelope('not json'))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(env({}, { epoch: '0' })))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(env({}, { extra: 1 })))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(env({}, { scheme: 'group', epoch: 0 })))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(env({}, { nonce: b64(11) })))).toBe('invalid_length');
    expect(codeOf(() => parseEnvelope(env({ signature: `${b64(64)}=` })))).toBe('invalid_encoding');
    expect(codeOf(() => parseEnvelope(env({ ciphertext: b64(100) })))).toBe('invalid_length');
  });
  it('refuses an envelope over the size limit', () => {
    expect(codeOf(() => parseEnvelope(env({ ciphertext: 'A'.repeat(256 * 1024 + 4) })))).toBe('envelope_too_large');
  });
  it('refuses a non-canonical base64url tail', () => {
    const sig = b64(64);
    expect(codeOf(() => parseEnvelope(env({ signature: `${sig.slice(0, -1)}${sig.endsWith('w') ? 'x' : 'w'}` })))).toBe('invalid_encoding');
  });
});

describe('wrapped keys', () => {
  const d = '0193c2a0-0000-7000-8000-00000000000d';
  it('takes RSA-3072/4096 ciphertexts, once per device', () => {
    expect(validateWrappedKeys([{ deviceId: d, wrappedKey: b64(384) }], 'k')).toHaveLength(1);
    expect(codeOf(() => validateWrappedKeys([{ deviceId: d, wrappedKey: b64(256) }], 'k'))).toBe('invalid_length');
    expect(codeOf(() => validateWrappedKeys([{ deviceId: d, wrappedKey: b64(384) }, { deviceId: d, wrappedKey: b64(384) }], 'k'))).toBe('duplicate_device');
    expect(codeOf(() => validateWrappedKeys(Array.from({ length: 1025 }, () => ({})), 'k'))).toBe('too_many_wrapped_keys');
  });
});

describe('epoch records', () => {
  const kp = generateKeyPairSync('ed25519');
  const signingKey = kp.publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url');
  const u = '0193c2a0-0000-7000-8000-0000000000a1';
  const dv = '0193c2a0-0000-7000-8000-0000000000d1';
  const payload = {
    type: 'bil.group-epoch.v1', chat_id: header.chat_id, epoch: 1, prev_hash: '', key_commitment: b64(32), signer_user_id: u, signer_device_id: dv, created_at: 1,
    members: [{ user_id: u, role: 'admin', identity_key: b64(32), devices: [{ device_id: dv, encryption_key: b64(400), signing_key: signingKey, issued_at: 1, certificate: b64(64) }] }],
  };
  const signature = sign(null, Buffer.from(canonicalize(payload)), kp.privateKey).toString('base64url');

  it('parses, hashes the canonical {payload, signature} and verifies the signer', () => {
    const r = parseEpochRecord(JSON.stringify({ signature, payload }));
    expect(r.hash).toBe(createHash('sha256').update(canonicalize({ payload, signature })).digest('base64url'));
    expect(epochSignatureValid(r, signingKey)).toBe(true);
    expect(epochSignatureValid(r, b64(32))).toBe(false);
  });
  it('refuses unsorted members, a missing admin, a genesis with a prev_hash', () => {
    const m2 = { ...payload.members[0]!, user_id: '0193c2a0-0000-7000-8000-0000000000a0', devices: [{ ...payload.members[0]!.devices[0]!, device_id: '0193c2a0-0000-7000-8000-0000000000d2' }] };
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: { ...payload, members: [...payload.members, m2] } })))).toBe('invalid_epoch_record');
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: { ...payload, members: [{ ...payload.members[0], role: 'member' }] } })))).toBe('invalid_epoch_record');
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: { ...payload, prev_hash: b64(32) } })))).toBe('invalid_epoch_record');
  });
});

describe('personal chat ids', () => {
  it('are the same from both sides, distinct per pair, and well-formed UUIDv8', () => {
    const [a, b, c] = ['0193c2a0-0000-7000-8000-00000000000a', '0193c2a0-0000-7000-8000-00000000000b', '0193c2a0-0000-7000-8000-00000000000c'];
    expect(personalChatId(a, b)).toBe(personalChatId(b, a));
    expect(personalChatId(a, b)).not.toBe(personalChatId(a, c));
    expect(personalChatId(a, b)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
