// CreateGroup: a group with its members and its genesis epoch, signed by the
// calling device.
import { refusePlaintextTitle, validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps, type MemberInput } from '../context.js';
import { directory, requireKnownUsers, requireSigner } from '../repository.js';
import { getChat, type ChatView } from '../queries/chats.js';
import { memberEntries, parseProposal } from './proposals.js';
import { runChat } from './run-chat.js';

export async function createGroup(
  deps: ChatDeps,
  actor: Actor,
  input: { chatId: unknown; title?: unknown; members: MemberInput[]; epochRecord: unknown; epochKeys: unknown },
): Promise<ChatView> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  refusePlaintextTitle(input.title);
  const members = memberEntries(deps.settings, input.members);
  const proposal = parseProposal(actor, input.epochRecord, input.epochKeys);
  await runChat(deps, actor, chatId, async ({ tx, state }) => {
    const ids = [actor.userId, ...members.map((m) => m.userId)];
    // An existing id is refused by the decider (chat_exists) before any epoch rule, so skip the look-ups.
    const fresh = state.status === 'none';
    if (fresh) {
      await requireKnownUsers(tx, ids);
      await requireSigner(tx, actor, proposal.record);
    }
    return {
      type: 'CreateGroup',
      chatId,
      ownerUserId: actor.userId,
      ownerDeviceId: actor.deviceId,
      members,
      epoch: { ...proposal, directory: fresh ? await directory(tx, ids) : {} },
      maxMembers: deps.settings.maxGroupMembers,
      now: nowIso(deps),
    };
  });
  return getChat(deps, actor, chatId);
}
