// Delivery's look-up of push subscriptions at identity (ListPushSubscriptions,
// batched by user), with a short memory of both answers: users that have none
// (most users; PUSH_NO_SUBSCRIPTION_CACHE_MS) and the subscriptions of those
// that have some (PUSH_SUBSCRIPTION_CACHE_MS, a few seconds), so a busy chat costs an
// identity call per member per interval, not per message. A revoked device or
// deleted account forgets every remembered subscription at once (forgetAll,
// from identity's events); a push service's 404/410 forgets that user's, and
// so does identity's hint that a device of the user set or removed its
// subscription (forgetUser).
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

/** Most users (and subscriptions) each memory keeps. */
const REMEMBERED = 100_000;

export class PushDirectory {
  /** user id → until when (ms) the user is known to have no subscription. */
  private readonly none = new WeightedLru<string, number>(REMEMBERED);
  /** user id → the user's subscriptions and until when (ms) they are used without asking again; weighed by count. */
  private known = new WeightedLru<string, { until: number; targets: PushTarget[] }>(REMEMBERED);
  /** Bumped by forgetAll and forgetUser: an answer asked for before the change is used once but not remembered. */
  private generation = 0;

  constructor(
    private readonly source: Pick<PushSubscriptionSource, 'listByUsers' | 'deleteByEndpoint'>,
    private readonly ttl: { noneMs: number; knownMs: number },
    private readonly now: () => number = Date.now,
  ) {}

  /** The subscriptions of these users' active devices. */
  async subscriptionsOf(userIds: readonly string[]): Promise<PushTarget[]> {
    const now = this.now();
    const out: PushTarget[] = [];
    const ask: string[] = [];
    for (const u of userIds) {
      if ((this.none.get(u) ?? 0) > now) continue;
      const k = this.known.get(u);
      if (k && k.until > now) out.push(...k.targets);
      else ask.push(u);
    }
    for (let i = 0; i < ask.length; i += MAX_PUSH_LOOKUP_IDS) {
      const batch = ask.slice(i, i + MAX_PUSH_LOOKUP_IDS);
      const asked = this.generation;
      const found = await this.source.listByUsers(batch);
      const byUser = new Map<string, PushTarget[]>();
      for (const t of found) {
        const list = byUser.get(t.userId);
        if (list) list.push(t);
        else byUser.set(t.userId, [t]);
      }
      for (const u of batch) {
        const targets = byUser.get(u);
        if (!targets) {
          if (asked === this.generation) this.none.set(u, now + this.ttl.noneMs);
          continue;
        }
        this.none.delete(u);
        if (this.ttl.knownMs > 0 && asked === this.generation) this.known.set(u, { until: now + this.ttl.knownMs, targets }, targets.length);
      }
      out.push(...found);
    }
    return out;
  }

  /** The push service said the subscription is gone (404/410). */
  gone(target: PushTarget): Promise<void> {
    this.known.delete(target.userId);
    return this.source.deleteByEndpoint(target.deviceId, target.endpoint);
  }

  /**
   * A device of the user set or removed its subscription (identity's hint):
   * the user is asked about again at the next message, so a subscription made
   * just now is used at once and one removed is not used again.
   */
  forgetUser(userId: string): void {
    this.generation++; // an answer on its way was asked before the change: used once, not remembered
    this.none.delete(userId);
    this.known.delete(userId);
  }

  /** A device was revoked or an account deleted: no remembered subscription is used again. */
  forgetAll(): void {
    this.generation++;
    this.known = new WeightedLru(REMEMBERED);
  }
}
