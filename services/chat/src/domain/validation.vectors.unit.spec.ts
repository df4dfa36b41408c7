// The published vectors in docs/testvectors/ (the ones @bil/crypto's
// vectors.unit.spec.ts rebuilds byte for byte) run through the chat
// service's own checks: every document a client produced is accepted, the
// signed bytes the server computes are the vectors' signed text, the
// signatures verify, and the record hash is the vectors' hash. A change to
// the vectors or to either side's idea of the signed bytes breaks both.
// Also here: the server side of what canonical JSON refuses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { canonicalize } from '@bil/crypto/protocol';
import { epochRecordHash, epochSignatureValid, leaveSignatureValid, parseEnvelope, parseEpochRecord, parseLeave, personalChatId, signedText, validateWrappedKeys } from './validation.js';

const dir = new URL('../../../../docs/testvectors/', import.meta.url);
const read = <T>(name: string): T => JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as T;

interface Doc {
  payload: Record<string, unknown> & { members?: { user_id: string; devices: { device_id: string; signing_key: string }[] }[] };
  signature: string;
}
interface WrappedKey {
  device_id: string;
  wrapped_key: string;
}
interface Envelope {
  header: Record<string, unknown>;
  ciphertext: string;
  signature: string;
}

const group = read<{
  chat_id: string;
  records: Doc[];
  intermediate: { record_hash: string };
  wrapped_keys: WrappedKey[];
  messages: { envelope: Envelope }[];
  leave: { signature_input: string; leave: Doc };
}>('group.json');
const direct = read<{
  chat_id: string;
  personal_chat: { user_ids: [string, string]; chat_id: string };
  vectors: { envelope: Envelope; wrapped_keys: WrappedKey[]; intermediate: { associated_data: string } }[];
}>('direct.json');

/** The signing key the record lists for a device. */
function keyOf(record: Doc, userId: string, deviceId: string): string {
  const device = record.payload.members?.find((m) => m.user_id === userId)?.devices.find((d) => d.device_id === deviceId);
  if (!device) throw new Error(`device ${deviceId} not in the record`);
  return device.signing_key;
}

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

describe('docs/testvectors in the chat service', () => {
  it('group.json: the epoch record is accepted, its signed text and hash are the vectors\', its signature verifies', () => {
    const [record] = group.records;
    const r = parseEpochRecord(JSON.stringify(record));
    expect(r.chatId).toBe(group.chat_id);
    expect(r.signedBytes).toBe(canonicalize(record!.payload as never));
    expect(r.hash).toBe(group.intermediate.record_hash);
    expect(epochRecordHash(record!)).toBe(group.intermediate.record_hash);
    expect(epochSignatureValid(r, keyOf(record!, r.signerUserId, r.signerDeviceId))).toBe(true);
    expect(epochSignatureValid({ ...r, signedBytes: r.signedBytes.replace('"epoch":1', '"epoch":2') }, keyOf(record!, r.signerUserId, r.signerDeviceId))).toBe(false);
    expect(validateWrappedKeys(group.wrapped_keys.map((w) => ({ deviceId: w.device_id, wrappedKey: w.wrapped_key })), 'keys')).toHaveLength(group.wrapped_keys.length);
  });

  it('group.json: the signed leave is accepted, signs the vectors\' text and verifies under the leaving device\'s key', () => {
    const l = parseLeave(JSON.stringify(group.leave.leave));
    expect(l.signedBytes).toBe(group.leave.signature_input);
    expect(l.epochHash).toBe(group.intermediate.record_hash);
    expect(leaveSignatureValid(l, keyOf(group.records[0]!, l.userId, l.deviceId))).toBe(true);
  });

  it('group.json and direct.json: every envelope a client wrote is accepted as is', () => {
    for (const m of group.messages) {
      const e = parseEnvelope(JSON.stringify(m.envelope));
      expect(e).toEqual(m.envelope);
      expect(e.header.epoch_hash).toBe(group.intermediate.record_hash);
    }
    for (const v of direct.vectors) {
      expect(parseEnvelope(JSON.stringify(v.envelope))).toEqual(v.envelope);
      // What the client signs over (its AEAD associated data) is the header's canonical JSON.
      expect(canonicalize(v.envelope.header as never)).toBe(v.intermediate.associated_data);
      expect(validateWrappedKeys(v.wrapped_keys.map((w) => ({ deviceId: w.device_id, wrappedKey: w.wrapped_key })), 'keys')).toHaveLength(v.wrapped_keys.length);
    }
  });

  it('direct.json: the personal chat id is the one clients derive', () => {
    expect(personalChatId(...direct.personal_chat.user_ids)).toBe(direct.personal_chat.chat_id);
    expect(personalChatId(...direct.personal_chat.user_ids)).toBe(direct.chat_id);
  });
});

describe('what canonical JSON refuses, the server refuses with invalid_argument', () => {
  const deep = (n: number): unknown => (n === 0 ? 'x' : [deep(n - 1)]);
  const leave = group.leave.leave;

  it('signedText: a lone surrogate, nesting deeper than 32, a non-plain object, null, a float', () => {
    for (const [value, reason] of [
      [{ title: 'a\uD800b' }, 'lone surrogate'],
      [{ ['\uDC00']: 'x' }, 'lone surrogate'],
      [deep(33), 'too deep'],
      [{ at: new Date(0) }, 'plain objects only'],
      [{ n: null }, 'null not allowed'],
      [{ n: 1.5 }, 'only safe integers'],
    ] as const) {
      let err: { kind?: string; code?: string; message?: string; details?: Record<string, unknown> } = {};
      try {
        signedText(value, 'leave.payload', 'invalid_leave');
      } catch (e) {
        err = e as typeof err;
      }
      expect(err).toMatchObject({ kind: 'invalid_argument', code: 'invalid_leave', details: { field: 'leave.payload', reason } });
      expect(err.message).toMatch(/no canonical JSON/);
    }
    expect(signedText(deep(32), 'x', 'invalid_leave')).toBe(canonicalize(deep(32) as never));
  });

  it('documents carrying them are refused as invalid input, never an internal error', () => {
    const withLeave = (payload: unknown) => () => parseLeave(JSON.stringify({ payload, signature: leave.signature }));
    // JSON text can carry a lone surrogate (an escape): in a member the rules name, or as a member name.
    expect(codeOf(() => parseLeave(JSON.stringify(leave).replace(group.chat_id, '\\ud800')))).toBe('invalid_leave');
    expect(codeOf(withLeave({ ...leave.payload, '\uD800': 1 }))).toBe('invalid_leave');
    expect(codeOf(withLeave({ ...leave.payload, created_at: deep(40) }))).toBe('invalid_leave');
    const record = group.records[0]!;
    const withRecord = (payload: unknown) => () => parseEpochRecord(JSON.stringify({ payload, signature: record.signature }));
    expect(codeOf(withRecord({ ...record.payload, metadata: 'ab\uDC00' }))).toBe('invalid_encoding');
    expect(codeOf(withRecord({ ...record.payload, members: deep(40) }))).toBe('invalid_epoch_record');
    expect(codeOf(() => epochRecordHash({ payload: { ...record.payload, extra: deep(40) }, signature: record.signature }))).toBe('invalid_epoch_record');
    expect(codeOf(() => parseEnvelope(JSON.stringify(group.messages[0]!.envelope).replace('"group"', '"\\udc00"')))).toBe('invalid_envelope');
  });
});
