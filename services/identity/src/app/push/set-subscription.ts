// SetPushSubscription: the caller's own device stores (or replaces) its Web Push subscription.
import { notFound, permissionDenied } from '@bil/runtime';
import { DEFAULT_PUSH_ENDPOINT_HOSTS, validatePushSubscription } from '../../domain/push-subscription.js';
import { validateUuid } from '../../domain/validation.js';
import type { Actor, IdentityDeps } from '../context.js';
import { type PushSubscriptionRecord, type PushSubscriptionRow, subscriptionRecord } from './rows.js';

/** Only the device the access token names may set its subscription: a device cannot subscribe another. */
export function ownDevice(actor: Actor, rawDeviceId: unknown): string {
  const deviceId = validateUuid(rawDeviceId, 'device_id');
  if (deviceId !== actor.deviceId.toLowerCase()) throw permissionDenied('not_own_device', 'a device may only manage its own push subscription');
  return deviceId;
}

export async function setPushSubscription(
  deps: IdentityDeps,
  actor: Actor,
  raw: { deviceId: unknown; endpoint: unknown; p256dh: unknown; auth: unknown },
): Promise<PushSubscriptionRecord> {
  const deviceId = ownDevice(actor, raw.deviceId);
  const sub = validatePushSubscription(raw, deps.settings.pushEndpointHosts ?? DEFAULT_PUSH_ENDPOINT_HOSTS);
  const now = deps.clock.now().toISOString();
  const rows = await deps.db.query<PushSubscriptionRow>(
    `INSERT INTO identity.push_subscriptions (device_id, user_id, endpoint, p256dh, auth, created_at)
     SELECT device_id, user_id, ?, ?, ?, ? FROM identity.devices WHERE device_id = ? AND user_id = ? AND status = 'active'
     ON CONFLICT (device_id) DO UPDATE SET endpoint = EXCLUDED.endpoint, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, created_at = EXCLUDED.created_at
     RETURNING device_id, user_id, endpoint, p256dh, auth, created_at`,
    [sub.endpoint, sub.p256dh, sub.auth, now, deviceId, actor.userId],
  );
  const row = rows[0];
  if (!row) throw notFound('device_not_found', 'the device is not an active device of this account');
  deps.hints.pushSubscriptionsChanged(actor.userId);
  return subscriptionRecord(row);
}
