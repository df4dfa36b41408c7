// SetDisappearingTimer: a chat's disappearing-message timer (who may, and
// what a personal chat's signed statement must name, the decider says; the
// statement's signature is verified here with the calling device's key from
// the directory).
import { invalidArgument } from '@bil/runtime';
import { parseTimerStatement, timerStatementSignatureValid, validateDisappearingMs, validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { signingKey } from '../repository.js';
import { runChat } from './run-chat.js';

export async function setDisappearingTimer(
  deps: ChatDeps,
  actor: Actor,
  input: { chatId: unknown; disappearingMs: unknown; timerStatement?: unknown },
): Promise<void> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const disappearingMs = validateDisappearingMs(input.disappearingMs);
  const statement = input.timerStatement === undefined || input.timerStatement === '' ? null : parseTimerStatement(input.timerStatement);
  await runChat(deps, actor, chatId, async ({ tx }) => {
    if (statement && !timerStatementSignatureValid(statement, await signingKey(tx, actor))) {
      throw invalidArgument('invalid_timer_statement_signature', "the timer statement's signature does not verify with the calling device's signing key", {
        field: 'timer_statement',
      });
    }
    return { type: 'SetDisappearingTimer', actorUserId: actor.userId, actorDeviceId: actor.deviceId, disappearingMs, statement, now: nowIso(deps) };
  });
}
