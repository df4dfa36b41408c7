// Password checks and hashing, every scrypt call through the process's one bounded queue
// (hash-queue.ts); a caller that gave up meanwhile gets nothing saved.
import { userDecider, userStream, type ActiveUser } from '../domain/user/user.js';
import { type IdentityDeps, invalidCredentials } from './context.js';
import { ensureCallerWaiting } from './hash-queue.js';
import { burnPasswordCheck, hashPassword, verifyPassword } from './password.js';
import { findUserRow } from './repository.js';

/** Hashes a new password in turn; throws if the caller gave up meanwhile (nothing may be saved then). */
export async function queuedHash(deps: IdentityDeps, account: string, password: string): Promise<string> {
  const hash = await deps.hashing.run(account, () => hashPassword(password, deps.settings.scrypt));
  ensureCallerWaiting();
  return hash;
}

/** Checks a password against a stored hash in turn. */
export async function queuedVerify(deps: IdentityDeps, account: string, password: string, stored: string): Promise<boolean> {
  const ok = await deps.hashing.run(account, () => verifyPassword(password, stored));
  ensureCallerWaiting();
  return ok;
}

export async function checkPassword(deps: IdentityDeps, rawUsername: unknown, rawPassword: unknown): Promise<ActiveUser> {
  const password = typeof rawPassword === 'string' ? rawPassword.normalize('NFKC') : '';
  const username = typeof rawUsername === 'string' && rawUsername.length <= 64 ? rawUsername : '';
  const row = username ? await findUserRow(deps, username) : undefined;
  const account = `u:${username.toLowerCase()}`;
  if (!row || row.status !== 'active' || password.length === 0 || password.length > 1024) {
    await deps.hashing.run(account, () => burnPasswordCheck(password.slice(0, 1024)));
    throw invalidCredentials();
  }
  const loaded = await deps.store.load(deps.db, userDecider, userStream(row.user_id));
  if (loaded.state.status !== 'active' || !(await queuedVerify(deps, account, password, loaded.state.passwordHash))) throw invalidCredentials();
  return loaded.state;
}
