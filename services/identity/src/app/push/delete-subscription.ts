// DeletePushSubscription (the caller's own device) and DeletePushSubscriptionByEndpoint
// (delivery, after the push service answered 404/410 for that endpoint).
import { invalidArgument } from '@bil/runtime';
import { MAX_PUSH_ENDPOINT_CHARS } from '@bil/proto/limits';
import { validateUuid } from '../../domain/validation.js';
import type { Actor, IdentityDeps } from '../context.js';
import { ownDevice } from './set-subscription.js';

export async function deletePushSubscription(deps: IdentityDeps, actor: Actor, rawDeviceId: unknown): Promise<boolean> {
  const deviceId = ownDevice(actor, rawDeviceId);
  const rows = await deps.db.query(`DELETE FROM identity.push_subscriptions WHERE device_id = ? AND user_id = ? RETURNING device_id`, [deviceId, actor.userId]);
  if (rows.length > 0) deps.hints.pushSubscriptionsChanged(actor.userId);
  return rows.length > 0;
}

/** Removes the device's subscription only while it is still on `endpoint` (the browser may have registered a new one since). */
export async function deletePushSubscriptionByEndpoint(deps: IdentityDeps, rawDeviceId: unknown, rawEndpoint: unknown): Promise<boolean> {
  const deviceId = validateUuid(rawDeviceId, 'device_id');
  if (typeof rawEndpoint !== 'string' || rawEndpoint.length === 0 || rawEndpoint.length > MAX_PUSH_ENDPOINT_CHARS) {
    throw invalidArgument('invalid_push_endpoint', 'endpoint must be the subscription URL', { field: 'endpoint' });
  }
  const rows = await deps.db.query<{ user_id: string }>(
    `DELETE FROM identity.push_subscriptions WHERE device_id = ? AND endpoint = ? RETURNING user_id`,
    [deviceId, rawEndpoint],
  );
  if (rows.length > 0) {
    deps.logger.info({ deviceId }, 'push subscription removed: the push service said it is gone');
    deps.hints.pushSubscriptionsChanged(rows[0]!.user_id);
  }
  return rows.length > 0;
}
