// The caller's own account: profile, active devices, latest signed device list.
import type { IdentityDeps, Actor } from '../context.js';
import { userRow, listActiveDevices } from '../repository.js';
import { noSuchUser, rowToPublicUser, type DeviceRecord, type PublicUser } from '../rows.js';

export async function getAccount(deps: IdentityDeps, actor: Actor): Promise<{ user: PublicUser; devices: DeviceRecord[]; deviceList: string | null }> {
  const row = await userRow(deps, actor.userId);
  if (!row || row.status !== 'active') throw noSuchUser();
  return { user: rowToPublicUser(row), devices: await listActiveDevices(deps, actor.userId), deviceList: row.device_list };
}
