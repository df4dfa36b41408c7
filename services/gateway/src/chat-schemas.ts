// Size: past 400 lines because it is the one place that spells out every chat
// route's request and response schema (OpenAPI is generated from it); issue
// #15 (step 12) asks for typed contracts generated from one source instead.
//
// JSON schemas of the chat routes (/v1/chats, /v1/unread). Like schemas.ts
// they check structure and size only: types, required and unknown members,
// lengths, UUID shape. What an envelope or epoch record means (signatures,
// chains, the devices a message must be wrapped for, who may do what) is the
// chat service's to decide, and it answers with its own codes (docs/chat.md).
// Envelopes and epoch records are JSON objects here; the gateway passes them
// to chat as JSON text, and parses chat's JSON text back into objects.
// The request types are derived from the route schemas (FromSchema,
// @bil/proto/rest), as in schemas.ts: a schema and its type can't drift apart.
import type { FromSchema } from '@bil/proto/rest';
import { restChatSharedSchemas, type ChatTypeJson, type RoleJson, type WrappedKeyJson } from '@bil/proto/rest-chat';
import { BEARER, MAX_SAFE_INTEGER, errors } from './schemas.js';

// The size limits are chat's, defined once in @bil/proto/limits.
import { MAX_MESSAGE_ATTACHMENTS } from '@bil/proto/limits';
import { MAX_CIPHERTEXT_CHARS, MAX_EPOCH_KEYS, MAX_MEMBER_DEVICES, MAX_METADATA_CHARS, MAX_RECORD_MEMBERS, MAX_WRAPPED_KEYS } from '@bil/proto/limits';
import { MAX_DISAPPEARING_MS, MIN_DISAPPEARING_MS } from '@bil/proto/limits';

export { MAX_CIPHERTEXT_CHARS, MAX_EPOCH_KEYS, MAX_MEMBER_DEVICES, MAX_METADATA_CHARS, MAX_RECORD_MEMBERS, MAX_WRAPPED_KEYS };

const uuid = (description: string) => ({ type: 'string' as const, format: 'uuid', maxLength: 36, description });
const ref = <Id extends string>(id: Id) => ({ $ref: `${id}#` as const });

const ROLES = ['owner', 'admin', 'member'] as const;
const CHAT_TYPES = ['personal', 'group'] as const;

export type { ChatTypeJson, RoleJson, WrappedKeyJson };

/** The chat objects' shared schemas (WrappedKey, Envelope, EpochRecord, SignedLeave, Member, Chat, Message, MessagesPage, Epoch, EpochsPage, UnreadChat, Unread): in @bil/proto/rest-chat with their derived JSON types. */
export const chatSharedSchemas = restChatSharedSchemas;

const bodyErrors = [400, 413, 415];
const chatIdParams = {
  type: 'object',
  additionalProperties: false,
  required: ['chat_id'],
  properties: { chat_id: uuid('The chat.') },
} as const;
const memberParams = {
  type: 'object',
  additionalProperties: false,
  required: ['chat_id', 'user_id'],
  properties: { chat_id: uuid('The group.'), user_id: uuid('The member.') },
} as const;
const epochKeys = {
  type: 'array',
  maxItems: MAX_EPOCH_KEYS,
  items: ref('WrappedKey'),
  description: 'The new epoch key wrapped once for every device the record lists, exactly.',
} as const;
const memberSpec = {
  type: 'object',
  additionalProperties: false,
  required: ['user_id'],
  properties: {
    user_id: uuid('The user to add.'),
    role: { type: 'string', enum: ['admin', 'member'], description: 'Default `member`; only the owner may add admins.' },
  },
} as const;
const chatAnswer = { type: 'object', required: ['chat'], properties: { chat: ref('Chat') } } as const;


export type CreateChatBody = FromSchema<typeof createChatSchema.body>;
export const createChatSchema = {
  tags: ['chats'],
  summary: 'Open the personal chat with a user (the same one every time), or create a group with its genesis epoch.',
  description:
    'Personal: `{"type":"personal","peer_user_id":…}`; answers 201 when it was created, 200 when it existed. ' +
    'Group: `{"type":"group","chat_id":<client-chosen UUID>,"members":[…],"epoch_record":<genesis, bil.group-epoch.v2>,"epoch_keys":[…]}`; ' +
    'the caller becomes the owner. The title goes encrypted into the record\'s `metadata`: the server stores none, and a non-empty ' +
    '`title` is 400 `plaintext_title_refused`.',
  security: BEARER,
  body: {
    type: 'object',
    required: ['type'],
    discriminator: { propertyName: 'type' },
    oneOf: [
      {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'peer_user_id'],
        properties: {
          type: { type: 'string', enum: ['personal'] },
          peer_user_id: uuid('The other user; not the caller.'),
        },
      },
      {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'chat_id', 'members', 'epoch_record', 'epoch_keys'],
        properties: {
          type: { type: 'string', enum: ['group'] },
          chat_id: uuid('Client-chosen id (lowercase UUID); the genesis record names it.'),
          title: {
            type: 'string',
            maxLength: 512,
            description: 'Deprecated: absent or "". Any other value is 400 `plaintext_title_refused` (the title belongs in the encrypted record metadata).',
          },
          members: {
            type: 'array',
            maxItems: MAX_RECORD_MEMBERS,
            items: memberSpec,
            description: 'The other initial members (not the caller).',
          },
          epoch_record: ref('EpochRecord'),
          epoch_keys: epochKeys,
        },
      },
    ],
  },
  response: {
    200: { ...chatAnswer, description: 'The personal chat already existed.' },
    201: { ...chatAnswer, description: 'Created.' },
    ...errors(...bodyErrors, 401, 403, 404, 409),
  },
} as const;

export type ListChatsQuery = FromSchema<typeof listChatsSchema.querystring>;
export const listChatsSchema = {
  tags: ['chats'],
  summary: "The caller's chats, newest activity first, with unread counts.",
  security: BEARER,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      type: { type: 'string', enum: CHAT_TYPES, description: 'Only chats of this type.' },
      limit: { type: 'integer', minimum: 1, maximum: 100, description: 'Page size, default 50.' },
      cursor: { type: 'string', minLength: 1, maxLength: 1024, description: '`next_cursor` of the previous page.' },
    },
  },
  response: {
    200: {
      type: 'object',
      required: ['chats', 'next_cursor'],
      properties: {
        chats: { type: 'array', items: ref('Chat') },
        next_cursor: { type: 'string', description: 'Pass as `cursor` for the next page; empty on the last page.' },
      },
    },
    ...errors(400, 401),
  },
} as const;

export type ChatParams = FromSchema<typeof getChatSchema.params>;
export const getChatSchema = {
  tags: ['chats'],
  summary: 'One chat the caller belongs to, with its members.',
  security: BEARER,
  params: chatIdParams,
  response: { 200: chatAnswer, ...errors(400, 401, 404) },
} as const;

export const deleteChatSchema = {
  tags: ['chats'],
  summary: 'Delete a group (owner only); it disappears for every member.',
  security: BEARER,
  params: chatIdParams,
  response: { 204: { type: 'null', description: 'Deleted.' }, ...errors(400, 401, 403, 404, 409) },
} as const;

export type AddMembersBody = FromSchema<typeof addMembersSchema.body>;
export const addMembersSchema = {
  tags: ['chats'],
  summary: 'Add users to a group with the next epoch record, which lists them (admins and the owner).',
  security: BEARER,
  params: chatIdParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['members', 'epoch_record', 'epoch_keys'],
    properties: {
      members: { type: 'array', minItems: 1, maxItems: MAX_RECORD_MEMBERS, items: memberSpec },
      epoch_record: ref('EpochRecord'),
      epoch_keys: epochKeys,
    },
  },
  response: { 200: chatAnswer, ...errors(...bodyErrors, 401, 403, 404, 409) },
} as const;

export type MemberParams = FromSchema<typeof removeMemberSchema.params>;
export type RemoveMemberBody = FromSchema<typeof removeMemberSchema.body>;
export const removeMemberSchema = {
  tags: ['chats'],
  summary: 'Remove a member from a group with the next epoch, or leave it (the caller\'s own user id) with a signed leave.',
  description:
    'Removing another member (admins; the owner for admins): `epoch_record` and `epoch_keys` of the next epoch without them, ' +
    'else 400 `epoch_required`. Leaving: `{"leave": <signed leave>}`, else 400 `leave_required`; the leave must be signed by the ' +
    'calling device (`invalid_leave_signature`), name this chat, the caller and the calling device (`leave_mismatch`) and an epoch ' +
    'up to the current one by its stored record hash (409 `leave_epoch_mismatch`). After a leave the group needs a new epoch before ' +
    'anyone sends (`epoch_rotation_required: true`), and `GET /v1/chats/{chat_id}` lists the leave in `pending_leaves` until then.',
  security: BEARER,
  params: memberParams,
  body: {
    type: 'object',
    additionalProperties: false,
    properties: { epoch_record: ref('EpochRecord'), epoch_keys: epochKeys, leave: ref('SignedLeave') },
  },
  response: {
    200: {
      type: 'object',
      required: ['chat_id', 'epoch', 'epoch_rotation_required'],
      properties: {
        chat_id: { type: 'string' },
        epoch: { type: 'integer', description: 'The current epoch after the change.' },
        epoch_rotation_required: { type: 'boolean', description: 'True after a leave: an admin must publish the next epoch before anyone sends.' },
      },
    },
    ...errors(...bodyErrors, 401, 403, 404, 409),
  },
} as const;

export type ChangeRoleBody = FromSchema<typeof changeRoleSchema.body>;
export const changeRoleSchema = {
  tags: ['chats'],
  summary: "Change a member's role (owner only); `owner` transfers ownership and makes the caller an admin.",
  security: BEARER,
  params: memberParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['role'],
    properties: { role: { type: 'string', enum: ROLES } },
  },
  response: {
    200: { type: 'object', required: ['member'], properties: { member: ref('Member') } },
    ...errors(...bodyErrors, 401, 403, 404, 409),
  },
} as const;

export type ListEpochsQuery = FromSchema<typeof listEpochsSchema.querystring>;
export const listEpochsSchema = {
  tags: ['chats'],
  summary: "A group's epoch records in order, each with the calling device's wrapped epoch key.",
  security: BEARER,
  params: chatIdParams,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      after_epoch: { type: 'integer', minimum: 0, maximum: MAX_SAFE_INTEGER, description: 'Only epochs after this one; default 0 (from genesis).' },
      limit: { type: 'integer', minimum: 1, maximum: 100, description: 'Default 100.' },
    },
  },
  response: {
    200: ref('EpochsPage'),
    ...errors(400, 401, 404),
  },
} as const;

export type PublishEpochBody = FromSchema<typeof publishEpochSchema.body>;
export const publishEpochSchema = {
  tags: ['chats'],
  summary: 'Publish the next epoch of a group (admins and the owner; the caller\'s device signs the record).',
  security: BEARER,
  params: chatIdParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['epoch_record', 'epoch_keys'],
    properties: { epoch_record: ref('EpochRecord'), epoch_keys: epochKeys },
  },
  response: {
    201: {
      type: 'object',
      required: ['epoch', 'record_hash'],
      properties: { epoch: { type: 'integer' }, record_hash: { type: 'string' } },
    },
    ...errors(...bodyErrors, 401, 403, 404, 409),
  },
} as const;

export type EpochParams = FromSchema<typeof addEpochKeysSchema.params>;
export type AddEpochKeysBody = FromSchema<typeof addEpochKeysSchema.body>;
export const addEpochKeysSchema = {
  tags: ['chats'],
  summary: 'Hand the current epoch key to members\' devices that have none (e.g. a newly linked device); any member.',
  security: BEARER,
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['chat_id', 'epoch'],
    properties: { chat_id: uuid('The group.'), epoch: { type: 'integer', minimum: 1, maximum: MAX_SAFE_INTEGER, description: 'The current epoch.' } },
  },
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['epoch_keys'],
    properties: { epoch_keys: { ...epochKeys, minItems: 1, description: 'One wrapped key per device without one.' } },
  },
  response: {
    200: { type: 'object', required: ['added'], properties: { added: { type: 'integer' } } },
    ...errors(...bodyErrors, 401, 403, 404, 409),
  },
} as const;

const sendAnswer = {
  type: 'object',
  required: ['seq', 'created_at', 'duplicate'],
  properties: {
    seq: { type: 'integer', description: 'The message\'s sequence number in the chat.' },
    created_at: { type: 'string', description: 'When the server stored it, RFC 3339.' },
    duplicate: { type: 'boolean', description: 'True when this resent a stored message (same device and message id).' },
  },
} as const;
export type SendMessageBody = FromSchema<typeof sendMessageSchema.body>;
export const sendMessageSchema = {
  tags: ['chats'],
  summary: 'Post an encrypted message; resending the same message id from the same device is idempotent.',
  description:
    'Personal chats: `wrapped_keys` holds one wrapped content key per current device of both users including the sending device, exactly; ' +
    'otherwise 409 `mismatched_devices` with `details.missing_devices` and `details.extra_devices`. Groups: no `wrapped_keys`, ' +
    'the envelope is at the current epoch. Larger body limit than other routes (GATEWAY_MESSAGE_BODY_LIMIT_BYTES).',
  security: BEARER,
  params: chatIdParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['message_id', 'envelope'],
    properties: {
      message_id: uuid('Client-chosen (UUIDv7, lowercase); equals envelope.header.message_id.'),
      envelope: ref('Envelope'),
      wrapped_keys: { type: 'array', maxItems: MAX_WRAPPED_KEYS, items: ref('WrappedKey') },
      attachment_ids: {
        type: 'array',
        maxItems: MAX_MESSAGE_ATTACHMENTS,
        items: uuid('A completed blob of the caller (POST /v1/blobs) that the encrypted content refers to.'),
        description: 'Blobs the message references: its chat\'s members may then download them (409 `attachment_not_usable` otherwise).',
      },
    },
  },
  response: {
    200: { ...sendAnswer, description: 'A resend: the message was already stored (`duplicate: true`).' },
    201: { ...sendAnswer, description: 'Stored.' },
    ...errors(...bodyErrors, 401, 403, 404, 409),
  },
} as const;

export type ListMessagesQuery = FromSchema<typeof listMessagesSchema.querystring>;
export const listMessagesSchema = {
  tags: ['chats'],
  summary: 'One page of history by sequence number: `after` pages forwards, `before` backwards, neither gives the newest.',
  security: BEARER,
  params: chatIdParams,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      after: { type: 'integer', minimum: 0, maximum: MAX_SAFE_INTEGER, description: 'Messages with seq greater than this, oldest first.' },
      before: { type: 'integer', minimum: 1, maximum: MAX_SAFE_INTEGER, description: 'The newest messages with seq less than this.' },
      limit: { type: 'integer', minimum: 1, maximum: 200, description: 'Default 50.' },
    },
  },
  response: {
    200: ref('MessagesPage'),
    ...errors(400, 401, 404),
  },
} as const;

export type MarkReadBody = FromSchema<typeof markReadSchema.body>;
export const markReadSchema = {
  tags: ['chats'],
  summary: "Move the caller's read marker forward to `seq` (never backwards).",
  security: BEARER,
  params: chatIdParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['seq'],
    properties: { seq: { type: 'integer', minimum: 0, maximum: MAX_SAFE_INTEGER, description: 'Everything up to this seq is read.' } },
  },
  response: {
    200: {
      type: 'object',
      required: ['last_read_seq', 'unread_count'],
      properties: { last_read_seq: { type: 'integer' }, unread_count: { type: 'integer' } },
    },
    ...errors(...bodyErrors, 401, 404),
  },
} as const;

export type MessageParams = FromSchema<typeof deleteMessageSchema.params>;
export type DeleteMessageBody = FromSchema<typeof deleteMessageSchema.body>;
export const deleteMessageSchema = {
  tags: ['chats'],
  summary: 'Delete one of your messages for everyone, with your signed tombstone.',
  description:
    'Only the sender (any of their devices) may: others get 403 `not_the_sender`. The tombstone (`bil.message-delete.v1`) must be signed by the ' +
    'calling device (400 `invalid_tombstone_signature`) and name this chat, this message, the caller and the calling device (400 ' +
    '`tombstone_mismatch`). The ciphertext and wrapped keys are erased; history keeps the message as `removed` with the tombstone. ' +
    'Deleting again answers `deleted: false`.',
  security: BEARER,
  params: {
    type: 'object',
    additionalProperties: false,
    required: ['chat_id', 'message_id'],
    properties: { chat_id: uuid('The chat.'), message_id: uuid('The message id (as in `Message.message_id`).') },
  },
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['tombstone'],
    properties: { tombstone: ref('SignedTombstone') },
  },
  response: {
    200: {
      type: 'object',
      required: ['seq', 'deleted'],
      properties: {
        seq: { type: 'integer', description: "The deleted message's seq." },
        deleted: { type: 'boolean', description: 'False when it had been deleted before.' },
      },
    },
    ...errors(...bodyErrors, 401, 403, 404),
  },
} as const;

export type SetTimerBody = FromSchema<typeof setTimerSchema.body>;
export const setTimerSchema = {
  tags: ['chats'],
  summary: "Set the chat's disappearing-message timer (groups: admins and the owner; personal chats: either member, with a signed statement).",
  description:
    'Messages sent afterwards expire `disappearing_ms` after the server stored them: history, catch-up and unread never return them once expired, ' +
    'and the server erases their ciphertext and keys. 0 switches the timer off. Personal chats need `timer_statement` (`bil.chat-timer.v1`), ' +
    'signed by the calling device (400 `invalid_timer_statement_signature`), naming this chat, this `disappearing_ms` and the caller (400 ' +
    '`timer_statement_mismatch`), with a version above the stored one (409 `timer_statement_stale`); malformed: 400 `invalid_timer_statement`. ' +
    "Groups send none (400 `timer_statement_mismatch`): an admin first publishes an epoch record whose signed metadata carries the timer, " +
    'and members\' clients show the timer from that record only.',
  security: BEARER,
  params: chatIdParams,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['disappearing_ms'],
    properties: {
      disappearing_ms: {
        type: 'integer',
        minimum: 0,
        maximum: MAX_DISAPPEARING_MS,
        description: `0 (off) or ${MIN_DISAPPEARING_MS} to ${MAX_DISAPPEARING_MS} ms (30 s to 365 days).`,
      },
      timer_statement: ref('SignedTimer'),
    },
  },
  response: { 200: chatAnswer, ...errors(...bodyErrors, 401, 403, 404, 409) },
} as const;

export type UnreadQuery = FromSchema<typeof unreadSchema.querystring>;
export const unreadSchema = {
  tags: ['chats'],
  summary: "The caller's total unread count and the chats with unread messages, newest activity first, each with its newest unread envelopes.",
  description:
    'One call on login: per chat with unread messages, the count, the first unread seq and (with `max_envelopes_per_chat`) the newest unread messages, ' +
    "each with the calling device's own wrapped key; `next_page_token` pages through the rest of the chats. `total_unread` and `unread_chats` count every chat.",
  security: BEARER,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      limit: { type: 'integer', minimum: 1, maximum: 500, description: 'Most chats listed (default 100); the total counts all.' },
      max_envelopes_per_chat: { type: 'integer', minimum: 0, maximum: 50, description: 'Newest unread messages per chat in `newest_unread` (default 0: none).' },
      page_token: { type: 'string', minLength: 1, maxLength: 512, description: 'The `next_page_token` of the previous page.' },
    },
  },
  response: {
    200: ref('Unread'),
    ...errors(400, 401),
  },
} as const;
