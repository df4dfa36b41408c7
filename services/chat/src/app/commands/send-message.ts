// SendMessage: the hot path. Validated here, then written by the group
// committer (send/message-writer.ts): O(1) in the chat's history and member
// count, batched with concurrent sends into one transaction.
import { failedPrecondition, invalidArgument, type Sql } from '@bil/runtime';
import { MAX_MESSAGE_ATTACHMENTS } from '@bil/proto/limits';
import { isUuid, parseEnvelope, validateUuid, validateWrappedKeys } from '../../domain/validation.js';
import type { Actor } from '../context.js';
import type { MessageWriter, SendResult } from '../send/message-writer.js';

/**
 * The blob ids a message references: at most MAX_MESSAGE_ATTACHMENTS UUIDs, each the
 * sender's own completed blob (one indexed query, only for a message that has any).
 */
async function attachmentIds(q: Sql, actor: Actor, raw: unknown): Promise<string[]> {
  const list = raw ?? [];
  if (!Array.isArray(list) || list.length > MAX_MESSAGE_ATTACHMENTS || !list.every(isUuid)) {
    throw invalidArgument('invalid_attachments', `attachment_ids must be at most ${MAX_MESSAGE_ATTACHMENTS} blob ids (lowercase UUIDs)`, { field: 'attachment_ids' });
  }
  const ids = [...new Set(list as string[])];
  if (ids.length === 0) return ids;
  const rows = await q.query<{ blob_id: string }>(
    `SELECT blob_id FROM chat.blobs WHERE blob_id = ANY(?::uuid[]) AND owner_user_id = ? AND status = 'complete'`,
    [`{${ids.join(',')}}`, actor.userId],
  );
  if (rows.length !== ids.length) {
    const usable = new Set(rows.map((r) => r.blob_id));
    throw failedPrecondition('attachment_not_usable', 'every attachment must be a completed upload of your own', {
      blob_ids: ids.filter((id) => !usable.has(id)),
    });
  }
  return ids;
}

export async function sendMessage(
  writer: MessageWriter,
  actor: Actor,
  input: { chatId: unknown; messageId: unknown; envelope: unknown; wrappedKeys: unknown; attachmentIds?: unknown },
  q: Sql,
): Promise<SendResult> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const messageId = validateUuid(input.messageId, 'message_id');
  const envelope = parseEnvelope(input.envelope);
  const wrappedKeys = validateWrappedKeys(input.wrappedKeys ?? [], 'wrapped_keys');
  return writer.send({
    userId: actor.userId,
    deviceId: actor.deviceId,
    chatId,
    messageId,
    envelope,
    wrappedKeys,
    attachmentIds: await attachmentIds(q, actor, input.attachmentIds),
  });
}
