import { describe, expect, it } from 'vitest';
import {
  chatEvents,
  decodeChatEvent,
  decodeDigestEvent,
  decodeIdentityEvent,
  decodePushSubscriptionsChanged,
  digestEvents,
  EventPayloadError,
  identityEvents,
  pushSubscriptionsChangedSubject,
  type Fields,
  type UserDeleted,
} from './events.js';

describe('event decoding', () => {
  it('reads a known event into its typed payload, filling proto3 defaults for absent fields', () => {
    const e = decodeIdentityEvent('identity.v1.device.registered', { deviceId: 'd', userId: 'u', certificateIssuedAt: 12, extra: 'ignored' });
    expect(e).toEqual({
      name: 'device.registered',
      payload: { deviceId: 'd', userId: 'u', name: '', encryptionKey: '', signingKey: '', certificate: '', certificateIssuedAt: '12', occurredAt: '' },
    });
    if (e?.name === 'device.registered') expect(e.payload.certificateIssuedAt).toBe('12'); // narrowed by name
  });

  it('reads repeated messages and enums by name', () => {
    const e = decodeChatEvent('chat.v1.chat.created', { chatId: 'c', type: 'CHAT_TYPE_GROUP', members: [{ userId: 'u', role: 'MEMBER_ROLE_OWNER' }], epoch: '1' });
    expect(e?.payload).toMatchObject({ type: 'CHAT_TYPE_GROUP', members: [{ userId: 'u', role: 'MEMBER_ROLE_OWNER' }], epoch: '1', title: '' });
  });

  it('refuses a payload that does not match its message, naming the field', () => {
    expect(() => decodeIdentityEvent('identity.v1.user.deleted', { userId: 7 })).toThrow(EventPayloadError);
    expect(() => decodeIdentityEvent('identity.v1.user.deleted', { userId: 7 })).toThrow(/userId is not a string/);
    expect(() => decodeChatEvent('chat.v1.chat.created', { members: [{ role: 'OWNER' }] })).toThrow(/members\.0\.role is not one of/);
    expect(() => decodeChatEvent('chat.v1.message.posted', { seq: '1e3' })).toThrow(/seq is not a 64-bit integer/);
    expect(() => decodeChatEvent('chat.v1.message.read', 'text')).toThrow(/payload is not an object/);
  });

  it('answers null for events it does not list, or of another context', () => {
    expect(decodeIdentityEvent('identity.v1.user.renamed', {})).toBeNull();
    expect(decodeIdentityEvent('chat.v1.chat.created', {})).toBeNull();
    expect(decodeChatEvent('chat.v1.toString', {})).toBeNull();
    expect(decodeDigestEvent('chat.v1.message.posted', {})).toBeNull();
  });

  it('decodes digest events with their enum and defaults', () => {
    const e = decodeDigestEvent('digest.v1.digest.failed', { requestId: 'r', reason: 'DIGEST_FAILURE_REASON_TIMEOUT' });
    expect(e).toEqual({ name: 'digest.failed', payload: { requestId: 'r', userId: '', deviceId: '', reason: 'DIGEST_FAILURE_REASON_TIMEOUT', occurredAt: '' } });
    expect(decodeDigestEvent('digest.v1.policy.changed', { chatId: 'c', enabled: true, disabledByCount: 0 })?.payload).toMatchObject({ enabled: true, disabledByCount: 0 });
    expect(() => decodeDigestEvent('digest.v1.digest.ready', { chatIds: 'c' })).toThrow(/chatIds is not a list of strings/);
    expect(() => decodeDigestEvent('digest.v1.digest.failed', { reason: 'TIMEOUT' })).toThrow(/reason is not one of/);
  });

  it('every message lists the fields of its generated type (checked at compile time)', () => {
    // @ts-expect-error occurredAt is missing
    const partial: Fields<UserDeleted> = { userId: 'string' };
    // @ts-expect-error userId is a string, not a bool
    const wrong: Fields<UserDeleted> = { userId: 'bool', occurredAt: 'string' };
    expect([partial, wrong]).toHaveLength(2);
    expect(Object.keys(identityEvents)).toHaveLength(8);
    expect(Object.keys(chatEvents)).toHaveLength(12);
    expect(Object.keys(digestEvents)).toEqual(['digest.ready', 'digest.failed', 'policy.changed', 'consent.changed', 'key.rotated']);
  });

  it('keeps hints off every stream and reads only a well-formed one', () => {
    const subject = pushSubscriptionsChangedSubject('t1.');
    expect(subject).toBe('t1.identity.hint.push_subscriptions_changed');
    expect(subject.startsWith('t1.identity.v1.')).toBe(false); // IDENTITY captures identity.v1.> only
    expect(decodePushSubscriptionsChanged({ userId: 'u-1' })).toEqual({ userId: 'u-1' });
    for (const bad of [null, 'u-1', {}, { userId: 7 }, { userId: '' }, { userId: 'x'.repeat(65) }]) expect(decodePushSubscriptionsChanged(bad)).toBeUndefined();
  });
});
