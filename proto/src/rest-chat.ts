// The chat objects of the public REST API (docs/api.md "Chats"): their shared
// schemas, which the gateway registers, validates and serialises with, and the
// JSON types derived from them, which the gateway's mappers build and the SDK
// reads. Pure, browser-safe (`@bil/proto/rest-chat`).
import { MAX_CIPHERTEXT_CHARS, MAX_DISAPPEARING_MS, MAX_MEMBER_DEVICES, MAX_METADATA_CHARS, MAX_RECORD_MEMBERS, MIN_DISAPPEARING_MS } from './limits.js';
import type { SharedJson } from './rest.js';

const MAX_SAFE_INTEGER = Number.MAX_SAFE_INTEGER;
const uuid = (description: string) => ({ type: 'string' as const, format: 'uuid', maxLength: 36, description });
const b64 = (maxLength: number, description: string, minLength = 1) => ({ type: 'string' as const, minLength, maxLength, description });
const int = (minimum: number, description: string, maximum = MAX_SAFE_INTEGER) => ({ type: 'integer' as const, minimum, maximum, description });
const ref = <Id extends string>(id: Id) => ({ $ref: `${id}#` as const });

const ROLES = ['owner', 'admin', 'member'] as const;
const CHAT_TYPES = ['personal', 'group'] as const;

export const restChatSharedSchemas = [
  {
    $id: 'WrappedKey',
    type: 'object',
    description: 'A symmetric key wrapped with RSA-OAEP for one device (docs/protocol.md).',
    additionalProperties: false,
    required: ['device_id', 'wrapped_key'],
    properties: {
      device_id: uuid('The recipient device.'),
      wrapped_key: b64(700, 'RSA-OAEP ciphertext (384 or 512 bytes), base64url.'),
    },
  },
  {
    $id: 'Envelope',
    type: 'object',
    description:
      'An end-to-end encrypted message (docs/protocol.md, "Envelopes"); the server checks its structure and binding, never its contents. ' +
      'New messages use header version 2 with all fourteen members (`epoch_hash`, `recipient_user_id` included); any other version is ' +
      '400 `unsupported_envelope_version`. History returns messages as stored: version 1 headers (without those two members) for older messages.',
    additionalProperties: false,
    required: ['header', 'ciphertext', 'signature'],
    properties: {
      header: {
        type: 'object',
        additionalProperties: false,
        required: ['v', 'suite', 'chat_id', 'message_id', 'sender_user_id', 'sender_device_id', 'scheme', 'epoch', 'counter', 'timestamp', 'nonce', 'commitment'],
        properties: {
          v: int(1, 'Envelope version: 2 for new messages (the chat service refuses others with `unsupported_envelope_version`); 1 in older history.', 1000),
          suite: { type: 'string', enum: ['aes-256-gcm', 'chacha20-poly1305'], description: 'Content cipher.' },
          chat_id: uuid('The chat; must be the chat of the route.'),
          message_id: uuid('Client-chosen message id (UUIDv7); must equal `message_id` of the request.'),
          sender_user_id: uuid('The sending user: the caller.'),
          sender_device_id: uuid('The sending device: the caller\'s device.'),
          scheme: { type: 'string', enum: ['direct', 'group'], description: '`direct` in personal chats, `group` in groups.' },
          epoch: int(0, 'Group epoch (the current one) for `group`; 0 for `direct`.'),
          epoch_hash: b64(43, 'v2: `group`, the record hash of `epoch` (the stored one, else 409 `envelope_epoch_hash_mismatch`); `direct`, "".', 0),
          recipient_user_id: {
            type: 'string',
            maxLength: 36,
            description: 'v2: `direct`, the other user of the personal chat (else 400 `envelope_recipient_mismatch`); `group`, "".',
          },
          counter: int(1, 'Per (chat, sender device) counter, +1 per message.'),
          timestamp: int(0, "Sender's clock, ms since the epoch."),
          nonce: b64(16, 'AEAD nonce, 12 bytes, base64url.'),
          commitment: b64(43, 'Key commitment, 32 bytes, base64url.'),
        },
      },
      ciphertext: b64(MAX_CIPHERTEXT_CHARS, `AEAD output (padded plaintext and tag), base64url; at most ${MAX_CIPHERTEXT_CHARS} characters.`),
      signature: b64(86, "Ed25519 signature of the sender device, 64 bytes, base64url."),
    },
  },
  {
    $id: 'EpochRecord',
    type: 'object',
    description:
      'A signed group epoch record (docs/protocol.md, "Epoch record"); members verify the chain themselves. New records are ' +
      '`bil.group-epoch.v2` with `metadata` (a v1 record for a new epoch is 400 `unsupported_record_version`); chains stored ' +
      'before step 8 start with v1 records (no `metadata`), returned as stored.',
    additionalProperties: false,
    required: ['payload', 'signature'],
    properties: {
      payload: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'chat_id', 'epoch', 'prev_hash', 'members', 'key_commitment', 'signer_user_id', 'signer_device_id', 'created_at'],
        properties: {
          type: { type: 'string', enum: ['bil.group-epoch.v1', 'bil.group-epoch.v2'], description: '`bil.group-epoch.v2` for new records.' },
          metadata: b64(
            MAX_METADATA_CHARS,
            'v2, required: the group metadata ({"title": …}) encrypted under the epoch key, base64url(nonce(12) ‖ ciphertext ‖ tag(16)); ' +
              '28 to 4,096 bytes. The server never decrypts it.',
          ),
          chat_id: uuid('The group.'),
          epoch: int(1, '1 for genesis, then previous + 1.'),
          prev_hash: b64(43, 'Record hash of the previous record; "" for genesis.', 0),
          members: {
            type: 'array',
            minItems: 1,
            maxItems: MAX_RECORD_MEMBERS,
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['user_id', 'role', 'identity_key', 'devices'],
              properties: {
                user_id: uuid('The member.'),
                role: { type: 'string', enum: ['admin', 'member'], description: 'The owner and admins are `admin`.' },
                identity_key: b64(43, 'The member\'s account identity key.'),
                devices: {
                  type: 'array',
                  minItems: 1,
                  maxItems: MAX_MEMBER_DEVICES,
                  items: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['device_id', 'encryption_key', 'signing_key', 'issued_at', 'certificate'],
                    properties: {
                      device_id: uuid('The device.'),
                      encryption_key: b64(1200, 'RSA SPKI DER, base64url.'),
                      signing_key: b64(43, 'Ed25519 public key, base64url.'),
                      issued_at: int(0, 'Certificate time, ms since the epoch.'),
                      certificate: b64(86, 'Device certificate, base64url.'),
                    },
                  },
                },
              },
            },
          },
          key_commitment: b64(43, 'Commitment to the epoch key, 32 bytes, base64url.'),
          signer_user_id: uuid('The signing user.'),
          signer_device_id: uuid('The signing device: the caller\'s device.'),
          created_at: int(0, 'ms since the epoch.'),
        },
      },
      signature: b64(86, 'Ed25519 signature of the signer device over the canonical payload, base64url.'),
    },
  },
  {
    $id: 'SignedLeave',
    type: 'object',
    description:
      'A member\'s signed leave (docs/protocol.md, "Signed leave"): Ed25519 of the leaving device over the canonical payload. ' +
      'Admins\' clients verify it against the record of `epoch` before dropping the member from the next epoch.',
    additionalProperties: false,
    required: ['payload', 'signature'],
    properties: {
      payload: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'chat_id', 'user_id', 'device_id', 'epoch', 'epoch_hash', 'created_at'],
        properties: {
          type: { type: 'string', enum: ['bil.group-leave.v1'] },
          chat_id: uuid('The group.'),
          user_id: uuid('The leaving user: the caller.'),
          device_id: uuid("The leaving device: the caller's device, whose key signs."),
          epoch: int(1, 'The head epoch the leaver had verified; at most the current one.'),
          epoch_hash: b64(43, 'Its record hash (must be the stored one).'),
          created_at: int(0, 'ms since the epoch.'),
        },
      },
      signature: b64(86, 'Ed25519 signature of the leaving device over the canonical payload, base64url.'),
    },
  },
  {
    $id: 'SignedTombstone',
    type: 'object',
    description:
      'A message\'s signed tombstone (docs/protocol.md, "Delete for everyone"): Ed25519 of one of the sender\'s devices over the canonical ' +
      'payload. Clients verify it before showing the message as deleted by its sender.',
    additionalProperties: false,
    required: ['payload', 'signature'],
    properties: {
      payload: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'chat_id', 'message_id', 'sender_user_id', 'sender_device_id', 'deleted_at'],
        properties: {
          type: { type: 'string', enum: ['bil.message-delete.v1'] },
          chat_id: uuid('The chat.'),
          message_id: uuid('The deleted message.'),
          sender_user_id: uuid("The message's sender: the caller."),
          sender_device_id: uuid("The deleting device: the caller's device, whose key signs."),
          deleted_at: int(0, 'ms since the epoch.'),
        },
      },
      signature: b64(86, 'Ed25519 signature of the deleting device over the canonical payload, base64url.'),
    },
  },
  {
    $id: 'SignedTimer',
    type: 'object',
    description:
      'A personal chat\'s signed disappearing-message timer (docs/protocol.md, "Disappearing messages"): Ed25519 of the setting device over ' +
      'the canonical payload. Clients show the timer from it (verified under a device certified by the setter\'s pinned identity key), ' +
      'never from `disappearing_ms` alone. On a Chat: personal chats once a timer was set; absent before, and for groups (their timer is in ' +
      'the signed, encrypted group metadata).',
    additionalProperties: false,
    required: ['payload', 'signature'],
    properties: {
      payload: {
        type: 'object',
        additionalProperties: false,
        required: ['type', 'chat_id', 'disappearing_ms', 'version', 'set_by_user_id', 'set_by_device_id', 'created_at'],
        properties: {
          type: { type: 'string', enum: ['bil.chat-timer.v1'] },
          chat_id: uuid('The personal chat.'),
          disappearing_ms: { type: 'integer', minimum: 0, maximum: MAX_DISAPPEARING_MS, description: `0 (off) or ${MIN_DISAPPEARING_MS} to ${MAX_DISAPPEARING_MS} ms.` },
          version: int(1, 'Rises with every change by either person: above the stored statement\'s.'),
          set_by_user_id: uuid('The setter: the caller, one of the two people.'),
          set_by_device_id: uuid("The setting device: the caller's device, whose key signs."),
          created_at: int(0, 'ms since the epoch.'),
        },
      },
      signature: b64(86, 'Ed25519 signature of the setting device over the canonical payload, base64url.'),
    },
  },
  {
    $id: 'Member',
    type: 'object',
    description: 'A current member of a chat.',
    required: ['user_id', 'role', 'joined_at', 'joined_seq'],
    properties: {
      user_id: { type: 'string' },
      role: { type: 'string', enum: ROLES, description: '`owner` (groups only), `admin` or `member`.' },
      joined_at: { type: 'string', description: 'When the member (last) joined, RFC 3339.' },
      joined_seq: { type: 'integer', description: "The chat's last seq when they joined; they see later messages only." },
    },
  },
  {
    $id: 'Chat',
    type: 'object',
    description: 'A chat as the caller sees it.',
    required: [
      'chat_id', 'type', 'title', 'created_by', 'created_at', 'last_seq', 'last_activity_at', 'epoch',
      'epoch_rotation_required', 'my_role', 'member_count', 'last_read_seq', 'unread_count', 'peer_user_id', 'members', 'pending_leaves',
      'disappearing_ms',
    ],
    properties: {
      chat_id: { type: 'string' },
      type: { type: 'string', enum: CHAT_TYPES },
      title: {
        type: 'string',
        description:
          'Legacy only: the plaintext title of a group created before titles were encrypted, until its first `bil.group-epoch.v2` record; ' +
          '"" for every other chat. A group\'s title is in the encrypted `metadata` of its verified epoch record.',
      },
      created_by: { type: 'string' },
      created_at: { type: 'string', description: 'RFC 3339.' },
      last_seq: { type: 'integer', description: 'Sequence number of the newest message; 0 before the first.' },
      last_activity_at: { type: 'string', description: 'Newest message (or creation), RFC 3339; lists sort by it.' },
      epoch: { type: 'integer', description: 'Current group epoch; 0 for personal chats.' },
      epoch_rotation_required: { type: 'boolean', description: 'A member or device left and no new epoch was published: sends are refused until one is.' },
      my_role: { type: 'string', enum: ROLES },
      member_count: { type: 'integer' },
      last_read_seq: { type: 'integer', description: "The caller's read marker." },
      unread_count: { type: 'integer' },
      peer_user_id: { type: 'string', description: 'The other user of a personal chat; empty for groups.' },
      members: { type: 'array', items: ref('Member'), description: 'Filled by single-chat answers; empty in lists.' },
      pending_leaves: {
        type: 'array',
        items: ref('SignedLeave'),
        description:
          'Groups, single-chat answers: the signed leaves recorded since the current epoch, oldest first (the next epoch must drop these ' +
          'members; it empties the list). Empty in lists and for personal chats.',
      },
      disappearing_ms: {
        type: 'integer',
        description: 'The disappearing-message timer in ms (0 = off): messages sent now expire this long after they are stored.',
      },
      // Personal chats, once a timer was set: the signed statement that set it. Absent before, and for groups (SignedTimer says more).
      timer_statement: ref('SignedTimer'),
    },
  },
  {
    $id: 'Message',
    type: 'object',
    description:
      'A stored message as the calling device receives it. A `removed` one (deleted for everyone, or erased on expiry) has no `envelope`; ' +
      'one its sender deleted has the signed `tombstone` to verify.',
    required: ['chat_id', 'seq', 'message_id', 'sender_user_id', 'sender_device_id', 'wrapped_key', 'epoch', 'created_at', 'removed', 'expires_at'],
    properties: {
      chat_id: { type: 'string' },
      seq: { type: 'integer', description: 'Gap-free sequence number in the chat.' },
      message_id: { type: 'string' },
      sender_user_id: { type: 'string' },
      sender_device_id: { type: 'string' },
      envelope: ref('Envelope'),
      wrapped_key: { type: 'string', description: "Personal chats: the content key wrapped for the caller's device; empty for groups and removed messages." },
      epoch: { type: 'integer', description: 'Group epoch of the message; 0 in personal chats.' },
      created_at: { type: 'string', description: 'When the server stored it, RFC 3339.' },
      removed: { type: 'boolean', description: 'Deleted for everyone or erased on expiry: no envelope, no key.' },
      tombstone: ref('SignedTombstone'),
      expires_at: { type: 'string', description: 'When the message expires (disappearing timer), RFC 3339; "" when never.' },
    },
  },
  {
    $id: 'Epoch',
    type: 'object',
    description: "A group epoch record as listed, with the calling device's wrapped epoch key.",
    required: ['epoch', 'record_hash', 'record', 'wrapped_key', 'signer_user_id', 'signer_device_id', 'created_at'],
    properties: {
      epoch: { type: 'integer' },
      record_hash: { type: 'string', description: 'base64url SHA-256 of the canonical record.' },
      record: ref('EpochRecord'),
      wrapped_key: { type: 'string', description: "The calling device's wrapped epoch key; empty when it has none." },
      signer_user_id: { type: 'string' },
      signer_device_id: { type: 'string' },
      created_at: { type: 'string', description: 'RFC 3339.' },
    },
  },
  {
    $id: 'MessagesPage',
    type: 'object',
    description: 'One page of a chat\'s history (`GET /v1/chats/{chat_id}/messages`).',
    required: ['messages', 'has_more', 'last_seq'],
    properties: {
      messages: { type: 'array', items: ref('Message'), description: 'Always in ascending seq order.' },
      has_more: { type: 'boolean', description: 'More messages exist in the paging direction.' },
      last_seq: { type: 'integer', description: "The chat's newest sequence number." },
    },
  },
  {
    $id: 'EpochsPage',
    type: 'object',
    description: "A page of a group's epoch records, in order (`GET /v1/chats/{chat_id}/epochs`).",
    required: ['epochs', 'current_epoch', 'has_more'],
    properties: {
      epochs: { type: 'array', items: ref('Epoch') },
      current_epoch: { type: 'integer' },
      has_more: { type: 'boolean' },
    },
  },
  {
    $id: 'UnreadChat',
    type: 'object',
    description: 'A chat with unread messages (`GET /v1/unread`).',
    required: ['chat_id', 'type', 'title', 'unread_count', 'first_unread_seq', 'last_seq', 'last_activity_at', 'newest_unread'],
    properties: {
      chat_id: { type: 'string' },
      type: { type: 'string', enum: CHAT_TYPES },
      title: { type: 'string', description: 'Legacy only (see Chat.title); "" for personal chats and groups created since titles are encrypted.' },
      unread_count: { type: 'integer' },
      first_unread_seq: { type: 'integer', description: 'Fetch from here with `after = first_unread_seq - 1`.' },
      last_seq: { type: 'integer' },
      last_activity_at: { type: 'string', description: 'RFC 3339.' },
      newest_unread: { type: 'array', items: ref('Message'), description: 'The newest unread messages, oldest first (at most `max_envelopes_per_chat`).' },
    },
  },
  {
    $id: 'Unread',
    type: 'object',
    description: "The caller's unread summary, one page of chats (`GET /v1/unread`).",
    required: ['total_unread', 'chats', 'unread_chats', 'next_page_token'],
    properties: {
      total_unread: { type: 'integer' },
      unread_chats: { type: 'integer', description: 'How many chats have unread messages, over all pages.' },
      next_page_token: { type: 'string', description: 'Pass as `page_token` for more chats; empty on the last page.' },
      chats: { type: 'array', items: ref('UnreadChat') },
    },
  },
] as const;

export type ChatTypeJson = (typeof CHAT_TYPES)[number];
export type RoleJson = (typeof ROLES)[number];
export type WrappedKeyJson = SharedJson<'WrappedKey'>;
export type EnvelopeJson = SharedJson<'Envelope'>;
export type EpochRecordJson = SharedJson<'EpochRecord'>;
export type SignedLeaveJson = SharedJson<'SignedLeave'>;
export type SignedTombstoneJson = SharedJson<'SignedTombstone'>;
export type SignedTimerJson = SharedJson<'SignedTimer'>;
export type MemberJson = SharedJson<'Member'>;
export type ChatJson = SharedJson<'Chat'>;
export type MessageJson = SharedJson<'Message'>;
export type EpochJson = SharedJson<'Epoch'>;
export type MessagesPageJson = SharedJson<'MessagesPage'>;
export type EpochsPageJson = SharedJson<'EpochsPage'>;
export type UnreadChatJson = SharedJson<'UnreadChat'>;
export type UnreadJson = SharedJson<'Unread'>;
