// PublishDeviceList: stores the next signed device list of the caller's account.
import { invalidArgument } from '@bil/runtime';
import type { IdentityDeps, Actor } from '../context.js';
import { parseOwnList, publishInTx } from '../own-list.js';

/** Stores the next signed device list of the caller's account (migration, or after a revocation by a device without the identity key). */
export async function publishDeviceList(deps: IdentityDeps, actor: Actor, rawDeviceList: unknown): Promise<number> {
  const list = await parseOwnList(deps, actor, rawDeviceList);
  if (!list) throw invalidArgument('invalid_device_list', 'device_list is required', { field: 'device_list', reason: 'missing' });
  await deps.db.tx((tx) => publishInTx(deps, tx, actor.userId, list, deps.clock.now().toISOString()));
  return list.version;
}
