// AddEpochKeys: a member hands an epoch's key to devices that lack it (a
// device registered after the epoch was published).
import { failedPrecondition, isUniqueViolation } from '@bil/runtime';
import { MAX_EPOCH_KEYS, validateSeq, validateUuid, validateWrappedKeys } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { directory } from '../repository.js';
import { memberIds } from './proposals.js';
import { runChat } from './run-chat.js';

export async function addEpochKeys(deps: ChatDeps, actor: Actor, input: { chatId: unknown; epoch: unknown; epochKeys: unknown }): Promise<number> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const epoch = validateSeq(input.epoch, 'epoch');
  const keys = validateWrappedKeys(input.epochKeys, 'epoch_keys', MAX_EPOCH_KEYS);
  try {
    await runChat(deps, actor, chatId, async ({ tx, state }) => ({
      type: 'AddEpochKeys',
      actorUserId: actor.userId,
      epoch,
      keys,
      directory: state.status === 'active' && state.members[actor.userId] ? await directory(tx, memberIds(state)) : {},
      now: nowIso(deps),
    }));
  } catch (err) {
    if (isUniqueViolation(err, 'group_keys_pkey')) throw failedPrecondition('epoch_key_exists', 'a device already has a key for this epoch');
    throw err;
  }
  return keys.length;
}
