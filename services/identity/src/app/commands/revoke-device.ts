// RevokeDevice: ends a device of the caller's account and its sessions (optionally with the next signed list).
import { deviceDecider, deviceStream } from '../../domain/device/device.js';
import { validateUuid } from '../../domain/validation.js';
import type { IdentityDeps, Actor } from '../context.js';
import { parseOwnList, publishInTx } from '../own-list.js';
import { endSessions } from '../sessions.js';

/** Revokes a device; with `rawDeviceList` (optional: a device without the identity key can't sign one) the next list is stored in the same step. */
export async function revokeDevice(deps: IdentityDeps, actor: Actor, rawDeviceId: unknown, rawDeviceList?: unknown): Promise<string> {
  const deviceId = validateUuid(rawDeviceId, 'device_id');
  const list = await parseOwnList(deps, actor, rawDeviceList);
  const now = deps.clock.now().toISOString();
  await deps.db.tx(async (tx) => {
    await deps.store.handleIn(tx, deviceDecider, deviceStream(deviceId), { type: 'RevokeDevice', byUserId: actor.userId, reason: 'user', now });
    await endSessions(deps, tx, `device_id = ?`, [deviceId], 'device_revoked', now);
    if (list) await publishInTx(deps, tx, actor.userId, list, now);
  });
  await deps.revocations.revoke('device', [deviceId]);
  return deviceId;
}
