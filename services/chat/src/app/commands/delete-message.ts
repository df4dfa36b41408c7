// DeleteMessage: its sender deletes a message for everyone with a signed
// tombstone (verified here with the calling device's key from the
// directory; the decider checks the caller is the sender and what the
// tombstone names). The MessageDeleted projection erases the ciphertext and
// keys in the same transaction (retention/erase.ts).
import { invalidArgument } from '@bil/runtime';
import { parseTombstone, tombstoneSignatureValid, validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { signingKey } from '../repository.js';
import { runChat } from './run-chat.js';

export async function deleteMessage(
  deps: ChatDeps,
  actor: Actor,
  input: { chatId: unknown; messageId: unknown; tombstone: unknown },
): Promise<{ seq: number; deleted: boolean }> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const messageId = validateUuid(input.messageId, 'message_id');
  const tombstone = parseTombstone(input.tombstone);
  let seq = 0;
  const { events } = await runChat(deps, actor, chatId, async ({ tx }) => {
    if (!tombstoneSignatureValid(tombstone, await signingKey(tx, actor))) {
      throw invalidArgument('invalid_tombstone_signature', "the tombstone's signature does not verify with the calling device's signing key", { field: 'tombstone' });
    }
    // The message as the caller may see it: one of theirs (any device) wins over another user's of the same id.
    const [m] = await tx.query<{ seq: string; message_id: string; sender_user_id: string; removed: boolean }>(
      `SELECT seq, message_id, sender_user_id, removed FROM chat.messages
       WHERE chat_id = ? AND message_id = ? AND (expires_at IS NULL OR expires_at > ?)
       ORDER BY (sender_user_id = ?) DESC, seq LIMIT 1`,
      [chatId, messageId, nowIso(deps), actor.userId],
    );
    seq = m ? Number(m.seq) : 0;
    return {
      type: 'DeleteMessage',
      actorUserId: actor.userId,
      actorDeviceId: actor.deviceId,
      message: m ? { seq, messageId: m.message_id, senderUserId: m.sender_user_id, removed: m.removed } : null,
      tombstone,
      now: nowIso(deps),
    };
  });
  return { seq, deleted: events.length > 0 };
}
