// ChangeRole: the owner (or an admin, as the decider allows) sets a member's role.
import { notFound } from '@bil/runtime';
import type { Role } from '../../domain/chat/chat.js';
import { validateUuid } from '../../domain/validation.js';
import { nowIso, type Actor, type ChatDeps } from '../context.js';
import { members, type MemberView } from '../queries/chats.js';
import { parseRole } from './proposals.js';
import { runChat } from './run-chat.js';

export async function changeRole(deps: ChatDeps, actor: Actor, input: { chatId: unknown; userId: unknown; role: Role | undefined }): Promise<MemberView> {
  const chatId = validateUuid(input.chatId, 'chat_id');
  const userId = validateUuid(input.userId, 'user_id');
  const role = parseRole(input.role, 'member');
  await runChat(deps, actor, chatId, () => ({ type: 'ChangeRole', actorUserId: actor.userId, userId, role, now: nowIso(deps) }));
  const member = (await members(deps.db, chatId)).find((m) => m.userId === userId);
  if (!member) throw notFound('member_not_found', 'this user is not a member');
  return member;
}
