import { describe, expect, it } from 'vitest';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonicalize } from '@bil/crypto/protocol';
import {
  MAX_LEAVE_CHARS,
  MAX_METADATA_BYTES,
  ed25519Valid,
  epochRecordHash,
  epochSignatureValid,
  leaveSignatureValid,
  parseEnvelope,
  parseEpochRecord,
  parseLeave,
  personalChatId,
  refusePlaintextTitle,
  validateWrappedKeys,
} from './validation.js';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code;
  }
};
const b64 = (n: number) => Buffer.alloc(n, 7).toString('base64url');
const PEER = '0193c2a0-0000-7000-8000-000000000005';
const header = {
  v: 2, suite: 'aes-256-gcm', chat_id: '0193c2a0-0000-7000-8000-000000000001', message_id: '0193c2a0-0000-7000-8000-000000000002',
  sender_user_id: '0193c2a0-0000-7000-8000-000000000003', sender_device_id: '0193c2a0-0000-7000-8000-000000000004',
  scheme: 'direct', epoch: 0, epoch_hash: '', recipient_user_id: PEER, counter: 1, timestamp: 1764100001000, nonce: b64(12), commitment: b64(32),
};
const groupHeader = { scheme: 'group', epoch: 3, epoch_hash: b64(32), recipient_user_id: '' };
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

describe('envelope header v2', () => {
  it('takes exactly the fourteen members, for both schemes', () => {
    expect(parseEnvelope(env()).header).toMatchObject({ v: 2, epoch_hash: '', recipient_user_id: PEER });
    expect(parseEnvelope(env({}, groupHeader)).header).toMatchObject({ scheme: 'group', epoch_hash: groupHeader.epoch_hash, recipient_user_id: '' });
    const { epoch_hash: _h, ...withoutHash } = header;
    const { recipient_user_id: _r, ...withoutRecipient } = header;
    expect(codeOf(() => parseEnvelope(JSON.stringify({ header: withoutHash, ciphertext: b64(272), signature: b64(64) })))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(JSON.stringify({ header: withoutRecipient, ciphertext: b64(272), signature: b64(64) })))).toBe('invalid_envelope');
  });

  it('refuses version 1 (and any other) for new messages with a message a person understands', () => {
    const { epoch_hash: _h, recipient_user_id: _r, ...v1 } = { ...header, v: 1 };
    let err: { code?: string; message?: string; details?: Record<string, unknown> } = {};
    try {
      parseEnvelope(JSON.stringify({ header: v1, ciphertext: b64(272), signature: b64(64) }));
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('unsupported_envelope_version');
    expect(err.message).toMatch(/out of date, update it/);
    expect(err.details).toMatchObject({ field: 'envelope.header.v', version: 1, supported: [2] });
    expect(codeOf(() => parseEnvelope(env({}, { v: 3 })))).toBe('unsupported_envelope_version');
    expect(codeOf(() => parseEnvelope(env({}, { v: '2' })))).toBe('invalid_envelope');
  });

  it('direct: epoch_hash is "" and recipient_user_id a UUID; group: a 32-byte epoch_hash and recipient_user_id ""', () => {
    expect(codeOf(() => parseEnvelope(env({}, { epoch_hash: b64(32) })))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(env({}, { recipient_user_id: '' })))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(env({}, { recipient_user_id: PEER.toUpperCase() })))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(env({}, { ...groupHeader, epoch_hash: '' })))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(env({}, { ...groupHeader, epoch_hash: b64(31) })))).toBe('invalid_length');
    expect(codeOf(() => parseEnvelope(env({}, { ...groupHeader, epoch_hash: 7 })))).toBe('invalid_envelope');
    expect(codeOf(() => parseEnvelope(env({}, { ...groupHeader, recipient_user_id: PEER })))).toBe('invalid_envelope');
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
    type: 'bil.group-epoch.v2', chat_id: header.chat_id, epoch: 1, prev_hash: '', key_commitment: b64(32), signer_user_id: u, signer_device_id: dv, created_at: 1,
    metadata: b64(12 + 16 + 20),
    members: [{ user_id: u, role: 'admin', identity_key: b64(32), devices: [{ device_id: dv, encryption_key: b64(400), signing_key: signingKey, issued_at: 1, certificate: b64(64) }] }],
  };
  const signature = sign(null, Buffer.from(canonicalize(payload)), kp.privateKey).toString('base64url');

  it('parses, hashes the canonical {payload, signature} and verifies the signer', () => {
    const r = parseEpochRecord(JSON.stringify({ signature, payload }));
    expect(r.hash).toBe(createHash('sha256').update(canonicalize({ payload, signature })).digest('base64url'));
    expect(epochSignatureValid(r, signingKey)).toBe(true);
    expect(epochSignatureValid(r, b64(32))).toBe(false);
  });
  it('v2 only for new epochs: a v1 record is unsupported_record_version, metadata is required', () => {
    const v1 = { ...payload, type: 'bil.group-epoch.v1' } as Record<string, unknown>;
    delete v1.metadata;
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: v1 })))).toBe('unsupported_record_version');
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: { ...v1, metadata: b64(40) } })))).toBe('unsupported_record_version');
    const noMetadata = { ...payload } as Record<string, unknown>;
    delete noMetadata.metadata;
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: noMetadata })))).toBe('invalid_epoch_record');
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: { ...payload, type: 'bil.group-epoch.v3' } })))).toBe('invalid_epoch_record');
  });

  it('checks metadata for shape and size only: strict base64url, 28 bytes to the documented limit', () => {
    const withMeta = (metadata: unknown) => () => parseEpochRecord(JSON.stringify({ signature, payload: { ...payload, metadata } }));
    expect(codeOf(withMeta(b64(28)))).toBe('no error');
    expect(codeOf(withMeta(b64(MAX_METADATA_BYTES)))).toBe('no error');
    expect(codeOf(withMeta(b64(27)))).toBe('invalid_length');
    expect(codeOf(withMeta(b64(MAX_METADATA_BYTES + 1)))).toBe('invalid_length');
    expect(codeOf(withMeta(''))).toBe('invalid_encoding');
    expect(codeOf(withMeta(`${b64(30)}==`))).toBe('invalid_encoding');
    expect(codeOf(withMeta(42))).toBe('invalid_encoding');
  });

  it('hashes a record exactly as clients do (the group test vector)', () => {
    const vector = JSON.parse(readFileSync(new URL('../../../../docs/testvectors/group.json', import.meta.url), 'utf8')) as {
      records: Array<{ payload: Record<string, unknown>; signature: string }>;
      intermediate: { record_hash: string };
    };
    expect(epochRecordHash(vector.records[0]!)).toBe(vector.intermediate.record_hash);
    const r = parseEpochRecord(JSON.stringify({ signature, payload }));
    expect(r.hash).toBe(epochRecordHash({ payload, signature }));
  });

  it('refuses unsorted members, a missing admin, a genesis with a prev_hash', () => {
    const m2 = { ...payload.members[0]!, user_id: '0193c2a0-0000-7000-8000-0000000000a0', devices: [{ ...payload.members[0]!.devices[0]!, device_id: '0193c2a0-0000-7000-8000-0000000000d2' }] };
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: { ...payload, members: [...payload.members, m2] } })))).toBe('invalid_epoch_record');
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: { ...payload, members: [{ ...payload.members[0], role: 'member' }] } })))).toBe('invalid_epoch_record');
    expect(codeOf(() => parseEpochRecord(JSON.stringify({ signature, payload: { ...payload, prev_hash: b64(32) } })))).toBe('invalid_epoch_record');
  });
});

describe('signed leaves', () => {
  const kp = generateKeyPairSync('ed25519');
  const signingKey = kp.publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('base64url');
  const payload = {
    type: 'bil.group-leave.v1', chat_id: header.chat_id, user_id: header.sender_user_id, device_id: header.sender_device_id,
    epoch: 2, epoch_hash: b64(32), created_at: 1764100005000,
  };
  const signature = sign(null, Buffer.from(canonicalize(payload)), kp.privateKey).toString('base64url');
  const leave = (doc: unknown) => () => parseLeave(typeof doc === 'string' ? doc : JSON.stringify(doc));

  it('parses and verifies with the leaving device key; keeps the document as given', () => {
    const l = parseLeave(JSON.stringify({ payload, signature }));
    expect(l).toMatchObject({ chatId: payload.chat_id, userId: payload.user_id, deviceId: payload.device_id, epoch: 2, epochHash: payload.epoch_hash });
    expect(l.document).toEqual({ payload, signature });
    expect(leaveSignatureValid(l, signingKey)).toBe(true);
    expect(leaveSignatureValid(l, b64(32))).toBe(false);
    expect(leaveSignatureValid(parseLeave(JSON.stringify({ payload: { ...payload, epoch: 3 }, signature })), signingKey)).toBe(false);
    expect(ed25519Valid('x', 'not a signature', 'not a key')).toBe(false);
  });

  it('refuses wrong shapes, types and sizes with invalid_leave and friends', () => {
    expect(codeOf(leave('nope'))).toBe('invalid_leave');
    expect(codeOf(leave([]))).toBe('invalid_leave');
    expect(codeOf(leave({ payload }))).toBe('invalid_leave');
    expect(codeOf(leave({ payload: { ...payload, extra: 1 }, signature }))).toBe('invalid_leave');
    expect(codeOf(leave({ payload: { ...payload, type: 'bil.group-leave.v2' }, signature }))).toBe('invalid_leave');
    expect(codeOf(leave({ payload: { ...payload, user_id: 'bob' }, signature }))).toBe('invalid_leave');
    expect(codeOf(leave({ payload: { ...payload, epoch: 0 }, signature }))).toBe('invalid_leave');
    expect(codeOf(leave({ payload: { ...payload, created_at: -1 }, signature }))).toBe('invalid_leave');
    expect(codeOf(leave({ payload: { ...payload, epoch_hash: b64(16) }, signature }))).toBe('invalid_length');
    expect(codeOf(leave({ payload, signature: b64(63) }))).toBe('invalid_length');
    expect(codeOf(leave(`{"payload":${JSON.stringify(payload)},"signature":"${signature}","pad":"${'x'.repeat(MAX_LEAVE_CHARS)}"}`))).toBe('leave_too_large');
  });
});

describe('group titles', () => {
  it('are never taken in plain text: empty or absent is fine, anything else is refused', () => {
    expect(codeOf(() => refusePlaintextTitle(undefined))).toBe('no error');
    expect(codeOf(() => refusePlaintextTitle(''))).toBe('no error');
    expect(codeOf(() => refusePlaintextTitle('Team'))).toBe('plaintext_title_refused');
    expect(codeOf(() => refusePlaintextTitle(' '))).toBe('plaintext_title_refused');
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

describe('disappearing timers', () => {
  it("the HTTP schema's bounds (@bil/proto/limits) are the protocol's (@bil/crypto/protocol), which the server checks", async () => {
    const limits = await import('@bil/proto/limits');
    const protocol = await import('@bil/crypto/protocol');
    expect([limits.MIN_DISAPPEARING_MS, limits.MAX_DISAPPEARING_MS]).toEqual([protocol.MIN_DISAPPEARING_MS, protocol.MAX_DISAPPEARING_MS]);
    const { validateDisappearingMs } = await import('./validation.js');
    expect(validateDisappearingMs(protocol.MAX_DISAPPEARING_MS)).toBe(protocol.MAX_DISAPPEARING_MS);
    expect(() => validateDisappearingMs(protocol.MIN_DISAPPEARING_MS - 1)).toThrow(/disappearing_ms/);
  });
});
