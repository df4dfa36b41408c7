// DeleteChat: a chat ends for everyone (who may, the decider says).
import { validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { runChat } from './run-chat.js';

export async function deleteChat(deps: ChatDeps, actor: Actor, rawChatId: unknown): Promise<void> {
  const chatId = validateUuid(rawChatId, 'chat_id');
  await runChat(deps, actor, chatId, () => ({ type: 'DeleteChat', actorUserId: actor.userId, now: nowIso(deps) }));
}
