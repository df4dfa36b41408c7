// SetDisappearingTimer: a chat's disappearing-message timer (who may, the decider says).
import { validateDisappearingMs, validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { runChat } from './run-chat.js';

export async function setDisappearingTimer(deps: ChatDeps, actor: Actor, input: { chatId: unknown; disappearingMs: unknown }): Promise<void> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const disappearingMs = validateDisappearingMs(input.disappearingMs);
  await runChat(deps, actor, chatId, () => ({ type: 'SetDisappearingTimer', actorUserId: actor.userId, disappearingMs, now: nowIso(deps) }));
}
