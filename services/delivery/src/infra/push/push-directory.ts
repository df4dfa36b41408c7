// Delivery's look-up of push subscriptions at identity (ListPushSubscriptions,
// batched by user), with a short memory of the users that have none: most
// users have no subscription, and most fan-outs then cost no identity call.
import { credentials } from '@grpc/grpc-js';
import { callUnary, clientOptions, WeightedLru, type ServiceAuth } from '@bil/runtime';
import { loadIdentityProto } from '@bil/proto';
import { MAX_PUSH_LOOKUP_IDS } from '@bil/proto/limits';
import type { ListPushSubscriptionsResponse__Output } from '@bil/proto/gen/bil/identity/v1/ListPushSubscriptionsResponse';
import type { DeletePushSubscriptionByEndpointResponse__Output } from '@bil/proto/gen/bil/identity/v1/DeletePushSubscriptionByEndpointResponse';
import type { PushTarget } from '../../app/push/sender.js';

/** What delivery asks of identity about push. */
export interface PushSubscriptionSource {
  listByUsers(userIds: string[]): Promise<PushTarget[]>;
  /** Removes the device's subscription if it is still on `endpoint`. */
  deleteByEndpoint(deviceId: string, endpoint: string): Promise<void>;
  close(): void;
}

export function createPushSubscriptionSource(address: string, auth: ServiceAuth, timeoutMs = 5000): PushSubscriptionSource {
  const proto = loadIdentityProto();
  const client = new proto.bil.identity.v1.IdentityService(address, credentials.createInsecure(), auth.clientOptions('identity', clientOptions));
  const opts = { timeoutMs };
  return {
    async listByUsers(userIds) {
      const res = await callUnary<unknown, ListPushSubscriptionsResponse__Output>(client, client.listPushSubscriptions as never, { userIds }, opts);
      return res.subscriptions.map((s) => ({ deviceId: s.deviceId, userId: s.userId, endpoint: s.endpoint, p256dh: s.p256dh, auth: s.auth }));
    },
    async deleteByEndpoint(deviceId, endpoint) {
      await callUnary<unknown, DeletePushSubscriptionByEndpointResponse__Output>(client, client.deletePushSubscriptionByEndpoint as never, { deviceId, endpoint }, opts);
    },
    close: () => client.close(),
  };
}

export class PushDirectory {
  /** user id → until when (ms) the user is known to have no subscription. */
  private readonly none = new WeightedLru<string, number>(100_000);

  constructor(
    private readonly source: Pick<PushSubscriptionSource, 'listByUsers' | 'deleteByEndpoint'>,
    private readonly noneTtlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The subscriptions of these users' active devices. */
  async subscriptionsOf(userIds: readonly string[]): Promise<PushTarget[]> {
    const now = this.now();
    const ask = userIds.filter((u) => (this.none.get(u) ?? 0) <= now);
    const out: PushTarget[] = [];
    for (let i = 0; i < ask.length; i += MAX_PUSH_LOOKUP_IDS) {
      const batch = ask.slice(i, i + MAX_PUSH_LOOKUP_IDS);
      const found = await this.source.listByUsers(batch);
      const withSubs = new Set(found.map((s) => s.userId));
      for (const u of batch) if (!withSubs.has(u)) this.none.set(u, now + this.noneTtlMs);
      out.push(...found);
    }
    return out;
  }

  /** The push service said the subscription is gone (404/410). */
  gone(target: PushTarget): Promise<void> {
    return this.source.deleteByEndpoint(target.deviceId, target.endpoint);
  }
}
