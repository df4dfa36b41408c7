// Direct (personal) chats: one fresh content key per message, wrapped with
// RSA-OAEP to every certified device of both users (docs/protocol.md "Direct
// chats"), and the chat id both users derive from their two user ids.
import { deviceMaterial, type VerifiedDevice } from './certificate.js';
import { assertUuid, equalBytes, fromBase64Url, toBase64Url, utf8, wipe, type Bytes } from './encoding.js';
import {
  checkSendParams,
  decryptWithKey,
  encryptWithKey,
  ENVELOPE_VERSION,
  parseEnvelope,
  PURPOSE,
  signEnvelope,
  verifyEnvelope,
  type DirectMessage,
  type HeaderFields,
  type LocalDevice,
  type OpenedMessage,
  type WrappedKey,
} from './envelope.js';
import { fail, failClosed } from './errors.js';
import { sha256 } from './kdf.js';
import { systemEntropy, type EntropySource } from './random.js';
import type { ReplayGuard } from './replay.js';
import type { Suite } from './aead.js';
import { oaepLabel, unwrapSecret, wrapSecret } from './wrap.js';

/**
 * The id of the one personal chat of two users, the same from either side: a
 * UUIDv8 (RFC 9562 §5.8) from SHA-256 of the UTF-8 text
 * `"bil.personal-chat.v1:" ‖ smaller id ‖ ":" ‖ larger id` (ids compared as
 * strings): the first 16 bytes, with the version nibble set to 8 and the
 * variant bits to 10. Clients recompute it and refuse a personal chat whose
 * id is not this, so a server can't put another user behind a verified chat.
 * @example
 * if (chat.chatId !== await personalChatId(me.userId, bob.userId)) refuse();
 */
export async function personalChatId(a: string, b: string): Promise<string> {
  assertUuid(a, 'a');
  assertUuid(b, 'b');
  if (a === b) throw new TypeError('a personal chat needs two different users');
  const [x, y] = a < b ? [a, b] : [b, a];
  const h = (await sha256(utf8(`bil.personal-chat.v1:${x}:${y}`))).slice(0, 16);
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = [...h].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The OAEP label for a direct message key wrapped to one device. */
function messageKeyLabel(h: { chat_id: string; message_id: string; sender_device_id: string }, deviceId: string): Bytes {
  return oaepLabel({
    purpose: PURPOSE.messageKey,
    chat_id: h.chat_id,
    message_id: h.message_id,
    sender_device_id: h.sender_device_id,
    device_id: deviceId,
  });
}

/**
 * Encrypts a direct-chat message: a fresh random content key, the padded
 * plaintext under it, the header signed by the sender device, and the key
 * wrapped with RSA-OAEP to each recipient device. The protocol wraps K to
 * every certified device of both users, the sending device included (so it
 * can read its own message later): pass the sender's own
 * {@link VerifiedDevice} among `recipients`, with its other devices. A
 * recipient with the sender's device id must carry the sender's own signing
 * key. Recipients must be {@link VerifiedDevice}s.
 * @example
 * const msg = await encryptDirectMessage({
 *   sender: me, chatId, messageId: uuidv7(), counter: 1, timestamp: Date.now(),
 *   plaintext: utf8('hello'), recipients: [bobPhone, bobLaptop, myLaptop, thisDevice], recipientUserId: bob.userId,
 * });
 * // store msg.envelope; one message_keys row per msg.wrapped_keys entry
 */
export async function encryptDirectMessage(
  params: {
    sender: LocalDevice;
    chatId: string;
    messageId: string;
    counter: number;
    timestamp: number;
    plaintext: Uint8Array;
    recipients: readonly VerifiedDevice[];
    /** The other user of the personal chat: named in the signed header. */
    recipientUserId: string;
    suite?: Suite;
  },
  entropy: EntropySource = systemEntropy,
): Promise<DirectMessage> {
  const suite = checkSendParams(params);
  const { sender, recipients } = params;
  assertUuid(params.recipientUserId, 'recipientUserId');
  if (params.recipientUserId === sender.userId) throw new TypeError('recipientUserId: the other user of the chat');
  if (!Array.isArray(recipients) || recipients.length === 0) throw new TypeError('recipients: expected at least one device');
  const materials = recipients.map((r) => deviceMaterial(r));
  if (new Set(recipients.map((r) => r.deviceId)).size !== recipients.length) throw new TypeError('recipients: duplicate device');
  for (const [i, r] of recipients.entries()) {
    if (r.deviceId === sender.deviceId && (r.userId !== sender.userId || !equalBytes(materials[i]!.signingKey, sender.keys.signing.publicKey))) {
      throw new TypeError('recipients: the entry for the sending device does not carry its keys');
    }
  }
  const fields: HeaderFields = {
    v: ENVELOPE_VERSION,
    suite,
    chat_id: params.chatId,
    message_id: params.messageId,
    sender_user_id: sender.userId,
    sender_device_id: sender.deviceId,
    scheme: 'direct',
    epoch: 0,
    epoch_hash: '',
    recipient_user_id: params.recipientUserId,
    counter: params.counter,
    timestamp: params.timestamp,
  };
  const key = entropy.randomBytes(32);
  try {
    const { header, ciphertext } = await encryptWithKey(suite, key, params.messageId, fields, params.plaintext, entropy);
    const envelope = await signEnvelope(sender, header, ciphertext);
    const wrapped_keys: WrappedKey[] = [];
    for (const [i, r] of recipients.entries()) {
      const wrapped = await wrapSecret(materials[i]!.encryptionKey, key, messageKeyLabel(header, r.deviceId), entropy);
      wrapped_keys.push({ device_id: r.deviceId, wrapped_key: toBase64Url(wrapped) });
    }
    return { envelope, wrapped_keys };
  } finally {
    wipe(key);
  }
}

/**
 * Decrypts a direct-chat message for this device. Checks, in order: envelope
 * shape; chat id and sender are the expected ones; not a replay; sender
 * device's signature; unwraps the key with the label for this device; key
 * commitment; AEAD tag; padding. Any failure is {@link CannotDecryptError}.
 * With `replay`, the message is recorded as accepted only after it decrypts.
 * The sending device opens its own messages the same way: `sender` is then
 * its own {@link VerifiedDevice} (whose signing key must be this device's).
 * With `chatUsers` (the two users the chat id derives from), the signed
 * header must name them: sender and `recipient_user_id` (version 2), or at
 * least the sender (version 1, stored history).
 * @example
 * const { plaintext, header } = await decryptDirectMessage({
 *   envelope, wrappedKey, recipient: me, chatId, sender: await verifyDevice(record, pinnedKey), replay, chatUsers: [me.userId, bob.userId],
 * });
 */
export async function decryptDirectMessage(params: {
  envelope: unknown;
  wrappedKey: WrappedKey | string;
  recipient: LocalDevice;
  chatId: string;
  sender: VerifiedDevice;
  replay?: ReplayGuard;
  chatUsers?: readonly [string, string];
}): Promise<OpenedMessage> {
  return failClosed(async () => {
    const { recipient, replay } = params;
    const { header, ciphertext } = await verifyEnvelope(parseEnvelope(params.envelope), {
      chatId: params.chatId,
      scheme: 'direct',
      sender: params.sender,
    });
    const users = params.chatUsers;
    if (users !== undefined) {
      if (!users.includes(header.sender_user_id)) fail();
      if (header.v === ENVELOPE_VERSION && (header.recipient_user_id === header.sender_user_id || !users.includes(header.recipient_user_id!))) fail();
    }
    // Its own message: the signature verified under this device's own key.
    if (header.sender_device_id === recipient.deviceId) {
      if (header.sender_user_id !== recipient.userId || !equalBytes(deviceMaterial(params.sender).signingKey, recipient.keys.signing.publicKey)) fail();
    }
    if (replay?.isReplay(header)) fail();
    const wk = params.wrappedKey;
    if (typeof wk !== 'string' && (typeof wk !== 'object' || wk === null || wk.device_id !== recipient.deviceId)) fail();
    const wrapped = fromBase64Url(typeof wk === 'string' ? wk : wk.wrapped_key);
    const key = await unwrapSecret(recipient.keys.encryption.privateKey, wrapped, messageKeyLabel(header, recipient.deviceId));
    try {
      const plaintext = await decryptWithKey(header.suite, key, header.message_id, header, ciphertext);
      replay?.accept(header);
      return { header, plaintext };
    } finally {
      wipe(key);
    }
  });
}
