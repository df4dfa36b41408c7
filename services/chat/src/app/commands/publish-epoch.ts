// PublishEpoch: a member rotates a group's key with the next signed epoch record.
import { validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { directory, requireSigner } from '../repository.js';
import { memberIds, parseProposal, requireMemberState } from './proposals.js';
import { runChat } from './run-chat.js';

export async function publishEpoch(
  deps: ChatDeps,
  actor: Actor,
  input: { chatId: unknown; epochRecord: unknown; epochKeys: unknown },
): Promise<{ epoch: number; recordHash: string }> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const proposal = parseProposal(actor, input.epochRecord, input.epochKeys);
  await runChat(deps, actor, chatId, async ({ tx, state }) => {
    requireMemberState(state, actor.userId);
    await requireSigner(tx, actor, proposal.record);
    return {
      type: 'PublishEpoch',
      actorUserId: actor.userId,
      actorDeviceId: actor.deviceId,
      epoch: { ...proposal, directory: await directory(tx, memberIds(state)) },
      now: nowIso(deps),
    };
  });
  return { epoch: proposal.record.epoch, recordHash: proposal.record.hash };
}
