// A user's directory entry: identity key, active devices, latest signed device list (or the closing one).
import { validateUuid } from '../../domain/validation.js';
import type { IdentityDeps } from '../context.js';
import { isClosingList } from '../device-lists.js';
import { userRow, listActiveDevices } from '../repository.js';
import { noSuchUser, type DeviceRecord } from '../rows.js';

/**
 * A user's directory entry with the latest signed device list. An account
 * deleted with a signed closing list still answers (no devices, the closing
 * list), so contacts can verify that it was closed; otherwise a deleted
 * account is `user_not_found`.
 */
export async function listDevices(deps: IdentityDeps, rawUserId: unknown): Promise<{ identityKey: string | null; devices: DeviceRecord[]; deviceList: string | null }> {
  const row = await userRow(deps, validateUuid(rawUserId, 'user_id'));
  if (row?.status === 'deleted' && isClosingList(row.device_list)) {
    return { identityKey: row.identity_key, devices: [], deviceList: row.device_list };
  }
  if (!row || row.status !== 'active') throw noSuchUser();
  return { identityKey: row.identity_key, devices: await listActiveDevices(deps, row.user_id), deviceList: row.device_list };
}
