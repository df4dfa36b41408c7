// AddMembers: new members join a group with its next epoch.
import { validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps, type MemberInput } from '../context.js';
import { directory, requireKnownUsers, requireSigner } from '../repository.js';
import { getChat, type ChatView } from '../queries/chats.js';
import { memberEntries, memberIds, parseProposal, requireMemberState } from './proposals.js';
import { runChat } from './run-chat.js';

export async function addMembers(
  deps: ChatDeps,
  actor: Actor,
  input: { chatId: unknown; members: MemberInput[]; epochRecord: unknown; epochKeys: unknown },
): Promise<ChatView> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const members = memberEntries(deps.settings, input.members);
  await runChat(deps, actor, chatId, async ({ tx, state, lastSeq }) => {
    requireMemberState(state, actor.userId);
    const proposal = parseProposal(actor, input.epochRecord, input.epochKeys);
    const ids = [...memberIds(state), ...members.map((m) => m.userId)];
    await requireKnownUsers(tx, members.map((m) => m.userId));
    await requireSigner(tx, actor, proposal.record);
    return {
      type: 'AddMembers',
      actorUserId: actor.userId,
      actorDeviceId: actor.deviceId,
      members,
      epoch: { ...proposal, directory: await directory(tx, ids) },
      lastSeq,
      maxMembers: deps.settings.maxGroupMembers,
      now: nowIso(deps),
    };
  });
  return getChat(deps, actor, chatId);
}
