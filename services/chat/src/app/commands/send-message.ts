// SendMessage: the hot path. Validated here, then written by the group
// committer (send/message-writer.ts): O(1) in the chat's history and member
// count, batched with concurrent sends into one transaction.
import { parseEnvelope, validateUuid, validateWrappedKeys } from '../../domain/validation.js';
import type { Actor } from '../context.js';
import type { MessageWriter, SendResult } from '../send/message-writer.js';

export async function sendMessage(
  writer: MessageWriter,
  actor: Actor,
  input: { chatId: unknown; messageId: unknown; envelope: unknown; wrappedKeys: unknown },
): Promise<SendResult> {
  return writer.send({
    userId: actor.userId,
    deviceId: actor.deviceId,
    chatId: validateUuid(input.chatId, 'chat_id'),
    messageId: validateUuid(input.messageId, 'message_id'),
    envelope: parseEnvelope(input.envelope),
    wrappedKeys: validateWrappedKeys(input.wrappedKeys ?? [], 'wrapped_keys'),
  });
}
