// UpdateProfile: the caller's display name.
import { notFound } from '@bil/runtime';
import { userDecider, userStream } from '../../domain/user/user.js';
import { validateName } from '../../domain/validation.js';
import type { IdentityDeps, Actor } from '../context.js';
import { toPublicUser, type PublicUser } from '../rows.js';

export async function updateProfile(deps: IdentityDeps, actor: Actor, rawDisplayName: unknown): Promise<PublicUser> {
  const displayName = validateName(rawDisplayName ?? '', 'display_name', 0, 64);
  const { state } = await deps.store.handle(
    userDecider,
    userStream(actor.userId),
    { type: 'UpdateProfile', displayName, now: deps.clock.now().toISOString() },
    { metadata: { actorUserId: actor.userId, actorDeviceId: actor.deviceId } },
  );
  if (state.status !== 'active') throw notFound('user_not_found', 'no such user');
  return toPublicUser(state);
}
