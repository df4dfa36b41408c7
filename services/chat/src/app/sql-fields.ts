// The event fields chat's SQL reads inside PostgreSQL (projections copying
// event rows, history reading a message's envelope from its event; no SQL
// reads a stored state's JSON), as names the compiler checks
// against the domain types: renaming a field in the decider fails the build
// here instead of breaking a query at run time (docs/architecture.md, "SQL
// over stored JSON").
import { fieldsOf, type EventData } from '@bil/runtime/domain';
import type { ChatEvent, EpochKey, MemberEntry } from '../domain/chat/chat.js';
import type { WrappedKeyInput } from '../domain/validation.js';

/** MessagePosted's payload (the messages projection, history's envelope). */
export const POSTED = fieldsOf<EventData<ChatEvent, 'MessagePosted'>>()(
  'chatId',
  'seq',
  'messageId',
  'senderUserId',
  'senderDeviceId',
  'epoch',
  'occurredAt',
  'wrappedKeys',
  'envelope',
  'expiresAt',
);
/** GroupEpochPublished's payload (the group_epochs projection). */
export const EPOCH_PUBLISHED = fieldsOf<EventData<ChatEvent, 'GroupEpochPublished'>>()(
  'chatId',
  'epoch',
  'recordHash',
  'record',
  'signerUserId',
  'signerDeviceId',
  'occurredAt',
);
/** What GroupEpochPublished and EpochKeysAdded share (the group_keys projection). */
export const EPOCH_KEYS = fieldsOf<EventData<ChatEvent, 'GroupEpochPublished' | 'EpochKeysAdded'>>()('chatId', 'epoch', 'keys');
export const EPOCH_KEY = fieldsOf<EpochKey>()('deviceId', 'userId', 'wrappedKey');
export const WRAPPED_KEY = fieldsOf<WrappedKeyInput>()('deviceId', 'wrappedKey');
export const MEMBER_ENTRY = fieldsOf<MemberEntry>()('userId', 'role');
