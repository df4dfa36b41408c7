// CreatePersonalChat: the one chat of a pair of users (its id derived from
// both), created on first ask and answered as it is afterwards.
import { invalidArgument, notFound } from '@bil/runtime';
import { personalChatId, validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { knownUsers } from '../repository.js';
import { getChat, type ChatView } from '../queries/chats.js';
import { runChat } from './run-chat.js';

export async function createPersonalChat(deps: ChatDeps, actor: Actor, rawPeer: unknown): Promise<{ chat: ChatView; created: boolean }> {
  const peer = validateUuid(rawPeer, 'peer_user_id');
  if (peer === actor.userId) throw invalidArgument('invalid_peer', 'a personal chat needs another user', { field: 'peer_user_id' });
  const known = await knownUsers(deps.db, [peer]);
  if (!known.has(peer)) throw notFound('user_not_found', 'no such user');
  const chatId = personalChatId(actor.userId, peer);
  const { events } = await runChat(deps, actor, chatId, () => ({
    type: 'CreatePersonalChat',
    chatId,
    userIds: [actor.userId, peer].sort() as [string, string],
    createdBy: actor.userId,
    now: nowIso(deps),
  }));
  return { chat: await getChat(deps, actor, chatId), created: events.length > 0 };
}
