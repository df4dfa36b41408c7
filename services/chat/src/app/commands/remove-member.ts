// RemoveMember: an admin removes another member (with the next epoch), or the
// caller leaves (with their signed leave).
import type { EpochProposal, LeaveProposal } from '../../domain/chat/chat.js';
import { parseLeave, validateUuid } from '../../domain/validation.js';
import { chatNotFound, nowIso, type Actor, type ChatDeps } from '../context.js';
import { directory, requireLeaveSigner, requireSigner, storedEpochHash } from '../repository.js';
import { memberIds, parseProposal, requireMemberState } from './proposals.js';
import { runChat } from './run-chat.js';

/**
 * Removes another member (an admin, with the next epoch) or lets the caller
 * leave (with their signed leave, verified here with the calling device's
 * key from the directory; the decider checks what it names).
 */
export async function removeMember(
  deps: ChatDeps,
  actor: Actor,
  input: { chatId: unknown; userId: unknown; epochRecord: unknown; epochKeys: unknown; leave?: unknown },
): Promise<{ chatId: string; epoch: number; epochRotationRequired: boolean }> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const userId = validateUuid(input.userId, 'user_id');
  const withEpoch = typeof input.epochRecord === 'string' && input.epochRecord !== '';
  const leave = input.leave === undefined || input.leave === '' ? undefined : parseLeave(input.leave);
  const { state: after } = await runChat(deps, actor, chatId, async ({ tx, state, lastSeq }) => {
    requireMemberState(state, actor.userId);
    let epoch: EpochProposal | undefined;
    if (withEpoch) {
      const proposal = parseProposal(actor, input.epochRecord, input.epochKeys);
      await requireSigner(tx, actor, proposal.record);
      epoch = { ...proposal, directory: await directory(tx, memberIds(state)) };
    }
    let leaveProposal: LeaveProposal | undefined;
    if (leave) {
      await requireLeaveSigner(tx, actor, leave);
      leaveProposal = { leave, storedEpochHash: await storedEpochHash(tx, chatId, leave.epoch) };
    }
    return {
      type: 'RemoveMember',
      actorUserId: actor.userId,
      actorDeviceId: actor.deviceId,
      userId,
      epoch,
      leave: leaveProposal,
      lastSeq,
      now: nowIso(deps),
    };
  });
  if (after.status !== 'active') throw chatNotFound();
  return { chatId, epoch: after.epoch, epochRotationRequired: after.rotationRequired };
}
