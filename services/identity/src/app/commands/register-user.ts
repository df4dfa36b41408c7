// RegisterUser: a new account (username, password hash, display name); its devices come next.
import { randomUUID } from 'node:crypto';
import { isUniqueViolation } from '@bil/runtime';
import { userDecider, userStream, type ActiveUser } from '../../domain/user/user.js';
import { normalizePassword, validateName, validateUsername } from '../../domain/validation.js';
import type { IdentityDeps } from '../context.js';
import { queuedHash } from '../credentials.js';
import { findUserRow } from '../repository.js';
import { toPublicUser, usernameTaken, type PublicUser } from '../rows.js';

export async function registerUser(deps: IdentityDeps, input: { username: unknown; password: unknown; displayName?: unknown }): Promise<PublicUser> {
  const username = validateUsername(input.username);
  const password = normalizePassword(input.password);
  const displayName = validateName(input.displayName ?? '', 'display_name', 0, 64);
  const existing = await findUserRow(deps, username);
  if (existing) throw usernameTaken();
  const userId = randomUUID();
  // The hash waits its turn; a caller that gave up meanwhile gets nothing saved (ensureCallerWaiting).
  const passwordHash = await queuedHash(deps, `u:${username.toLowerCase()}`, password);
  try {
    const { state } = await deps.store.handle(userDecider, userStream(userId), {
      type: 'RegisterUser',
      userId,
      username,
      displayName,
      passwordHash,
      now: deps.clock.now().toISOString(),
    });
    return toPublicUser(state as ActiveUser);
  } catch (err) {
    if (isUniqueViolation(err, 'users_username_key_key')) throw usernameTaken();
    throw err;
  }
}
