// MarkRead: the caller's read marker in a chat moves forward (never back).
import { readsDecider, readsStream } from '../../domain/reads/reads.js';
import { validateSeq, validateUuid } from '../../domain/validation.js';
import { meta, nowIso, type Actor, type ChatDeps } from '../context.js';
import { access } from '../repository.js';
import { unreadOf } from '../queries/paging.js';

export async function markRead(deps: ChatDeps, actor: Actor, rawChatId: unknown, rawSeq: unknown): Promise<{ lastReadSeq: number; unreadCount: number }> {
  const chatId = validateUuid(rawChatId, 'chat_id');
  const seq = validateSeq(rawSeq, 'seq');
  const before = await access(deps.db, actor, chatId);
  await deps.store.handle(
    readsDecider,
    readsStream(chatId, actor.userId),
    { type: 'MarkRead', chatId, userId: actor.userId, seq, lastSeq: before.lastSeq, now: nowIso(deps) },
    { metadata: meta(actor) },
  );
  const after = await access(deps.db, actor, chatId);
  return { lastReadSeq: after.lastReadSeq, unreadCount: unreadOf(after.lastSeq, after.lastReadSeq, after.joinedSeq) };
}
