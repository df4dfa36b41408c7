import { describe, expect, it } from 'vitest';
import { chatEventData } from './chat-events.js';
import { chatEventFrame } from './frames.js';

const chat = '11111111-1111-4111-8111-111111111111';
const user = '22222222-2222-4222-8222-222222222222';
const at = '2026-12-01T10:00:00.000Z';

describe('chat_event data (REST conventions)', () => {
  it('turns proto3 JSON (camelCase, enum names, int64 strings) into snake_case, short enums and numbers', () => {
    const frame = JSON.parse(
      chatEventFrame('chat_created', chat, {
        chatId: chat,
        type: 'CHAT_TYPE_GROUP',
        title: '',
        createdBy: user,
        members: [{ userId: user, role: 'MEMBER_ROLE_OWNER' }],
        epoch: '1',
        occurredAt: at,
      }),
    );
    expect(frame).toEqual({
      type: 'chat_event',
      event: 'chat_created',
      chat_id: chat,
      data: { chat_id: chat, type: 'group', created_by: user, members: [{ user_id: user, role: 'owner' }], epoch: 1, occurred_at: at },
    });
  });

  it('keeps only the documented fields, and maps every reason', () => {
    expect(
      chatEventData('epoch_rotation_required', { chatId: chat, epoch: '7', reason: 'EPOCH_ROTATION_REASON_DEVICE_REVOKED', userId: user, deviceId: user, occurredAt: at, extra: 'x' }),
    ).toEqual({ chat_id: chat, epoch: 7, reason: 'device_revoked', user_id: user, device_id: user, occurred_at: at });
    expect(chatEventData('member_removed', { chatId: chat, userId: user, removedBy: '', reason: 'MEMBER_REMOVAL_REASON_ACCOUNT_DELETED', leftSeq: '42', occurredAt: at })).toEqual({
      chat_id: chat,
      user_id: user,
      removed_by: '',
      reason: 'account_deleted',
      left_seq: 42,
      occurred_at: at,
    });
    // An unknown enum value is "" rather than a proto name leaking through.
    expect(chatEventData('role_changed', { chatId: chat, userId: user, role: 'MEMBER_ROLE_EMPEROR', changedBy: user, occurredAt: at }).role).toBe('');
  });
});
