// ListPushSubscriptions: delivery's batch look-up of the subscriptions of active devices.
import { invalidArgument } from '@bil/runtime';
import { MAX_PUSH_LOOKUP_IDS } from '@bil/proto/limits';
import { validateUuid } from '../../domain/validation.js';
import type { IdentityDeps } from '../context.js';
import { type PushSubscriptionRecord, type PushSubscriptionRow, subscriptionRecord } from './rows.js';

function ids(raw: unknown, field: string): string[] {
  if (!Array.isArray(raw)) return [];
  if (raw.length > MAX_PUSH_LOOKUP_IDS) throw invalidArgument('invalid_argument', `at most ${MAX_PUSH_LOOKUP_IDS} ${field}`, { field });
  return [...new Set(raw.map((id) => validateUuid(id, field)))];
}

/** The subscriptions of these devices and of these users' devices; only active devices (a revoked one has none anyway). */
export async function listPushSubscriptions(deps: IdentityDeps, rawDeviceIds: unknown, rawUserIds: unknown): Promise<PushSubscriptionRecord[]> {
  const deviceIds = ids(rawDeviceIds, 'device_ids');
  const userIds = ids(rawUserIds, 'user_ids');
  if (deviceIds.length === 0 && userIds.length === 0) return [];
  const rows = await deps.db.query<PushSubscriptionRow>(
    `SELECT p.device_id, p.user_id, p.endpoint, p.p256dh, p.auth, p.created_at
       FROM identity.push_subscriptions p JOIN identity.devices d ON d.device_id = p.device_id AND d.status = 'active'
      WHERE p.device_id IN (SELECT (jsonb_array_elements_text(?::jsonb))::uuid)
         OR p.user_id IN (SELECT (jsonb_array_elements_text(?::jsonb))::uuid)`,
    [JSON.stringify(deviceIds), JSON.stringify(userIds)],
  );
  return rows.map(subscriptionRecord);
}
