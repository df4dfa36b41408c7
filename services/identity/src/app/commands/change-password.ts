// ChangePassword: needs the old password; ends every other session of the account.
import { userDecider, userStream } from '../../domain/user/user.js';
import { normalizePassword } from '../../domain/validation.js';
import { type IdentityDeps, type Actor, invalidCredentials } from '../context.js';
import { queuedHash, queuedVerify } from '../credentials.js';
import { requireActiveUser } from '../rows.js';
import { endSessions } from '../sessions.js';

export async function changePassword(deps: IdentityDeps, actor: Actor, input: { oldPassword: unknown; newPassword: unknown }): Promise<void> {
  const newPassword = normalizePassword(input.newPassword, 'new_password');
  const oldPassword = typeof input.oldPassword === 'string' ? input.oldPassword.normalize('NFKC') : '';
  const loaded = await deps.store.load(deps.db, userDecider, userStream(actor.userId));
  const user = requireActiveUser(loaded.state);
  if (!(await queuedVerify(deps, `u:${user.username.toLowerCase()}`, oldPassword, user.passwordHash))) throw invalidCredentials();
  const passwordHash = await queuedHash(deps, `u:${user.username.toLowerCase()}`, newPassword);
  const now = deps.clock.now().toISOString();
  const ended = await deps.db.tx(async (tx) => {
    await deps.store.handleIn(tx, userDecider, userStream(actor.userId), { type: 'ChangePassword', passwordHash, now });
    return endSessions(deps, tx, `user_id = ? AND session_id <> ?`, [actor.userId, actor.sessionId], 'password_changed', now);
  });
  await deps.revocations.revoke('session', ended);
}
