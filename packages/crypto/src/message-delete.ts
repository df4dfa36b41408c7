// A message's signed tombstone: "delete this message for everyone", signed by
// one of its sender's devices (docs/protocol.md "Delete for everyone"). The
// server erases the ciphertext and keys and keeps the tombstone in the
// message's place; members' clients hide the message only as deleted by its
// sender when the tombstone verifies, so a server that erases a message on its
// own (or forges a tombstone) can't make it look like the sender's choice.
import { canonicalBytes } from './canonical-json.js';
import { assertUint, fromBase64Url, isUuid, toBase64Url } from './encoding.js';
import type { LocalDevice } from './envelope.js';
import { fail, failClosed, failClosedSync } from './errors.js';
import { ED25519_SIGNATURE_LENGTH, ed25519Sign, ed25519Verify } from './signature.js';
import { MESSAGE_DELETE_FIELDS, MESSAGE_DELETE_TYPE, SIGNED_STATEMENT_FIELDS, hasExactFields } from './signed-fields.js';

export { MESSAGE_DELETE_TYPE };

/** Exactly the members of MESSAGE_DELETE_FIELDS (signed-fields.ts; signed-fields.unit.spec.ts checks the type). */
export interface MessageDeletePayload {
  readonly type: typeof MESSAGE_DELETE_TYPE;
  readonly chat_id: string;
  readonly message_id: string;
  /** The message's sender: only they may delete it for everyone. */
  readonly sender_user_id: string;
  /** The device that signed (any of the sender's devices, not necessarily the one that sent). */
  readonly sender_device_id: string;
  /** ms since the Unix epoch. */
  readonly deleted_at: number;
}

export interface SignedMessageDelete {
  readonly payload: MessageDeletePayload;
  /** Ed25519 by the deleting device over the canonical payload, base64url. */
  readonly signature: string;
}

/**
 * Signs this device's tombstone for one of its user's messages.
 * @example
 * const tombstone = signMessageDelete({ chatId, messageId, device: me, deletedAt: Date.now() });
 * // DELETE /v1/chats/{chatId}/messages/{messageId} with { tombstone }
 */
export function signMessageDelete(params: { chatId: string; messageId: string; device: LocalDevice; deletedAt: number }): SignedMessageDelete {
  const { chatId, messageId, device } = params;
  if (!isUuid(chatId)) throw new TypeError('chatId: expected a UUID');
  if (!isUuid(messageId)) throw new TypeError('messageId: expected a UUID');
  assertUint(params.deletedAt, 'deletedAt');
  const payload: MessageDeletePayload = {
    type: MESSAGE_DELETE_TYPE,
    chat_id: chatId,
    message_id: messageId,
    sender_user_id: device.userId,
    sender_device_id: device.deviceId,
    deleted_at: params.deletedAt,
  };
  return { payload, signature: toBase64Url(ed25519Sign(device.keys.signing.secretKey, canonicalBytes(payload as never))) };
}

/**
 * Checks a tombstone's shape and returns its payload, without the signature
 * check (the caller reads the device id to find the key). Any failure is
 * {@link CannotDecryptError}.
 */
export function parseMessageDelete(tombstone: unknown): MessageDeletePayload {
  return failClosedSync(() => {
    const t = tombstone as Record<string, unknown> | null;
    if (!hasExactFields(t, SIGNED_STATEMENT_FIELDS)) fail();
    const p = t.payload as MessageDeletePayload;
    if (!hasExactFields(p, MESSAGE_DELETE_FIELDS)) fail();
    if (p.type !== MESSAGE_DELETE_TYPE || !isUuid(p.chat_id) || !isUuid(p.message_id) || !isUuid(p.sender_user_id) || !isUuid(p.sender_device_id)) fail();
    if (!Number.isSafeInteger(p.deleted_at) || p.deleted_at < 0) fail();
    if (typeof t.signature !== 'string') fail();
    fromBase64Url(t.signature, ED25519_SIGNATURE_LENGTH);
    return p;
  });
}

/**
 * Verifies a tombstone for one message: its shape, that it names this chat,
 * message and sender user, and the Ed25519 signature by `signingKey`, the
 * signing key of the device it names (the caller has verified that device
 * belongs to the sender). Any failure is {@link CannotDecryptError}.
 * @example
 * const p = await verifyMessageDelete({ tombstone, chatId, messageId, senderUserId, signingKey: device.signingKey });
 */
export async function verifyMessageDelete(params: {
  tombstone: unknown;
  chatId: string;
  messageId: string;
  senderUserId: string;
  signingKey: string | Uint8Array;
}): Promise<MessageDeletePayload> {
  return failClosed(async () => {
    const p = parseMessageDelete(params.tombstone);
    if (p.chat_id !== params.chatId || p.message_id !== params.messageId || p.sender_user_id !== params.senderUserId) fail();
    const key = typeof params.signingKey === 'string' ? fromBase64Url(params.signingKey, 32) : params.signingKey;
    const signature = fromBase64Url((params.tombstone as SignedMessageDelete).signature, ED25519_SIGNATURE_LENGTH);
    if (!ed25519Verify(key, canonicalBytes(p as never), signature)) fail();
    return p;
  });
}
