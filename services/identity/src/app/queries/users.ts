// The user directory: by username, by id.
import { notFound } from '@bil/runtime';
import { validateUuid } from '../../domain/validation.js';
import type { IdentityDeps } from '../context.js';
import { userRow, findUserRow } from '../repository.js';
import { noSuchUser, rowToPublicUser, type PublicUser } from '../rows.js';

export async function findUser(deps: IdentityDeps, rawUsername: unknown): Promise<PublicUser> {
  const username = typeof rawUsername === 'string' ? rawUsername : '';
  const row = username.length <= 64 ? await findUserRow(deps, username) : undefined;
  if (!row || row.status !== 'active') throw notFound('user_not_found', 'no such user');
  return rowToPublicUser(row);
}

export async function getUser(deps: IdentityDeps, rawUserId: unknown): Promise<PublicUser> {
  const row = await userRow(deps, validateUuid(rawUserId, 'user_id'));
  if (!row || row.status !== 'active') throw noSuchUser();
  return rowToPublicUser(row);
}
