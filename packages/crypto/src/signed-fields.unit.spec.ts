// The member lists in signed-fields.ts are the one definition: the payload
// types the signing code builds must have exactly those members (checked at
// compile time by `npm run typecheck`), and what the signers produce must
// pass the same check the verifiers (and the services) run.
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { DeviceCertificate } from './certificate.js';
import type { DeviceListEntry, DeviceListPayload } from './device-list.js';
import type { DigestConsentPayload } from './digest-consent.js';
import type { Envelope, EnvelopeHeader } from './envelope.js';
import type { GroupLeavePayload } from './group-leave.js';
import type { MessageDeletePayload } from './message-delete.js';
import type { ChatTimerPayload } from './chat-timer.js';
import type { EpochDevice, EpochMember, EpochRecordPayload, SignedEpochRecord } from './group.js';
import {
  DEVICE_CERTIFICATE_FIELDS,
  ENVELOPE_HEADER_FIELDS,
  ENVELOPE_HEADER_V1_FIELDS,
  GROUP_EPOCH_FIELDS,
  GROUP_EPOCH_V1_FIELDS,
  GROUP_LEAVE_FIELDS,
  SIGNED_STATEMENT_FIELDS,
  hasExactFields,
  type DEVICE_LIST_ENTRY_FIELDS,
  type DEVICE_LIST_FIELDS,
  type DIGEST_CONSENT_FIELDS,
  type MESSAGE_DELETE_FIELDS,
  type CHAT_TIMER_FIELDS,
  type ENVELOPE_FIELDS,
  type EPOCH_DEVICE_FIELDS,
  type EPOCH_MEMBER_FIELDS,
  type FieldName,
} from './signed-fields.js';

describe('signed fields', () => {
  it('the payload types have exactly the listed members', () => {
    expectTypeOf<keyof EnvelopeHeader>().toEqualTypeOf<FieldName<typeof ENVELOPE_HEADER_FIELDS>>();
    expectTypeOf<keyof Envelope>().toEqualTypeOf<FieldName<typeof ENVELOPE_FIELDS>>();
    expectTypeOf<keyof SignedEpochRecord>().toEqualTypeOf<FieldName<typeof SIGNED_STATEMENT_FIELDS>>();
    expectTypeOf<keyof EpochRecordPayload>().toEqualTypeOf<FieldName<typeof GROUP_EPOCH_FIELDS>>();
    expectTypeOf<keyof EpochMember>().toEqualTypeOf<FieldName<typeof EPOCH_MEMBER_FIELDS>>();
    expectTypeOf<keyof EpochDevice>().toEqualTypeOf<FieldName<typeof EPOCH_DEVICE_FIELDS>>();
    expectTypeOf<keyof GroupLeavePayload>().toEqualTypeOf<FieldName<typeof GROUP_LEAVE_FIELDS>>();
    expectTypeOf<keyof DeviceListPayload>().toEqualTypeOf<FieldName<typeof DEVICE_LIST_FIELDS>>();
    expectTypeOf<keyof DeviceListEntry>().toEqualTypeOf<FieldName<typeof DEVICE_LIST_ENTRY_FIELDS>>();
    expectTypeOf<keyof DigestConsentPayload>().toEqualTypeOf<FieldName<typeof DIGEST_CONSENT_FIELDS>>();
    expectTypeOf<keyof MessageDeletePayload>().toEqualTypeOf<FieldName<typeof MESSAGE_DELETE_FIELDS>>();
    expectTypeOf<keyof ChatTimerPayload>().toEqualTypeOf<FieldName<typeof CHAT_TIMER_FIELDS>>();
    expectTypeOf<keyof Omit<DeviceCertificate, 'certificate'> | 'type'>().toEqualTypeOf<FieldName<typeof DEVICE_CERTIFICATE_FIELDS>>();
  });

  it('version 2 lists are version 1 plus the added members', () => {
    expect(ENVELOPE_HEADER_FIELDS.names.filter((n) => !ENVELOPE_HEADER_V1_FIELDS.names.includes(n as never))).toEqual(['epoch_hash', 'recipient_user_id']);
    expect(ENVELOPE_HEADER_FIELDS.names).toHaveLength(14);
    expect(GROUP_EPOCH_FIELDS.names.filter((n) => !GROUP_EPOCH_V1_FIELDS.names.includes(n as never))).toEqual(['metadata']);
  });

  it('text is the sorted member names, as Object.keys(v).sort().join() gives them', () => {
    expect(GROUP_LEAVE_FIELDS.text).toBe('chat_id,created_at,device_id,epoch,epoch_hash,type,user_id');
    expect(DEVICE_CERTIFICATE_FIELDS.text).toBe('encryption_key,identity_key,issued_at,signing_key,type,user_id');
    expect(Object.isFrozen(GROUP_LEAVE_FIELDS) && Object.isFrozen(GROUP_LEAVE_FIELDS.names)).toBe(true);
  });

  it('hasExactFields: exactly the members, in any order, of an object that is not an array', () => {
    expect(hasExactFields({ signature: '', payload: {} }, SIGNED_STATEMENT_FIELDS)).toBe(true);
    expect(hasExactFields({ payload: {} }, SIGNED_STATEMENT_FIELDS)).toBe(false);
    expect(hasExactFields({ payload: {}, signature: '', extra: 1 }, SIGNED_STATEMENT_FIELDS)).toBe(false);
    expect(hasExactFields(['payload', 'signature'], SIGNED_STATEMENT_FIELDS)).toBe(false);
    expect(hasExactFields(null, SIGNED_STATEMENT_FIELDS)).toBe(false);
    expect(hasExactFields('payload,signature', SIGNED_STATEMENT_FIELDS)).toBe(false);
  });
});
