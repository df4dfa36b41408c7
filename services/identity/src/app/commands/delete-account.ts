// DeleteAccount: needs the password; revokes every device and session (optionally with a signed closing list).
import { failedPrecondition } from '@bil/runtime';
import { userDecider, userStream } from '../../domain/user/user.js';
import { type IdentityDeps, type Actor, invalidCredentials } from '../context.js';
import { queuedVerify } from '../credentials.js';
import { parseOwnList, publishCommand } from '../own-list.js';
import { requireActiveUser } from '../rows.js';
import { revokeAllDevices } from '../sessions.js';

/** Deletes the account; `rawDeviceList` (optional) is the closing list: next version, no devices. */
export async function deleteAccount(deps: IdentityDeps, actor: Actor, rawPassword: unknown, rawDeviceList?: unknown): Promise<void> {
  const loaded = await deps.store.load(deps.db, userDecider, userStream(actor.userId));
  const user = requireActiveUser(loaded.state);
  const password = typeof rawPassword === 'string' ? rawPassword.normalize('NFKC') : '';
  if (!(await queuedVerify(deps, `u:${user.username.toLowerCase()}`, password, user.passwordHash))) throw invalidCredentials();
  const list = await parseOwnList(deps, actor, rawDeviceList);
  if (list && list.devices.length > 0) {
    throw failedPrecondition('device_list_mismatch', 'the closing device list of a deleted account lists no devices', {
      missing_device_ids: [],
      unexpected_device_ids: list.devices.map((d) => d.deviceId),
    });
  }
  const now = deps.clock.now().toISOString();
  await deps.db.tx(async (tx) => {
    if (list) await deps.store.handleIn(tx, userDecider, userStream(actor.userId), publishCommand(list, now));
    await deps.store.handleIn(tx, userDecider, userStream(actor.userId), { type: 'DeleteUser', now });
    await revokeAllDevices(deps, tx, actor.userId, 'account_deleted', now);
  });
  await deps.revocations.revoke('user', [actor.userId]);
}
