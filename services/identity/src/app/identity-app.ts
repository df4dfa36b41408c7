// The identity context's application layer, as the gRPC handlers see it: a
// thin facade over one module per use case.
//
//   commands/   one module per command handler (register-user.ts,
//               register-device.ts, login.ts, refresh.ts, logout.ts,
//               revoke-device.ts, publish-device-list.ts, update-profile.ts,
//               change-password.ts, delete-account.ts): validate, check the
//               password where one is asked, then load → decide → append
//               through EventStore.handle / handleIn (the rules live in the
//               pure deciders)
//   queries/    one module per read (account.ts, users.ts, devices.ts)
//   repository.ts  read-model look-ups (users by id or username, active devices)
//   credentials.ts password hashing and checks through the bounded queue
//   sessions.ts    sessions started and ended, devices revoked with theirs
//   own-list.ts    the caller's own signed device list, parsed and stored
//   push/          Web Push subscriptions per device (set, delete, list for delivery)
//
// Projections run in the append transaction; the outbox publishes after commit.
import { systemClock, type Clock, type Database, type EventStore, type Logger, type RevocationList } from '@bil/runtime';
import { NO_HINTS, type Actor, type IdentityDeps, type IdentityHints, type IdentitySettings, type Tokens } from './context.js';
import { HashQueue } from './hash-queue.js';
import type { TokenSigner } from './tokens.js';
import type { DeviceRecord, PublicUser } from './rows.js';
import { registerUser } from './commands/register-user.js';
import { registerDevice } from './commands/register-device.js';
import { login } from './commands/login.js';
import { refresh } from './commands/refresh.js';
import { logout } from './commands/logout.js';
import { revokeDevice } from './commands/revoke-device.js';
import { publishDeviceList } from './commands/publish-device-list.js';
import { updateProfile } from './commands/update-profile.js';
import { changePassword } from './commands/change-password.js';
import { deleteAccount } from './commands/delete-account.js';
import { getAccount } from './queries/account.js';
import { findUser, getUser } from './queries/users.js';
import { listDevices } from './queries/devices.js';
import { setPushSubscription } from './push/set-subscription.js';
import { deletePushSubscription, deletePushSubscriptionByEndpoint } from './push/delete-subscription.js';
import { listPushSubscriptions } from './push/list-subscriptions.js';
import type { PushSubscriptionRecord } from './push/rows.js';

export type { DeviceRecord, PublicUser } from './rows.js';
export type { PushSubscriptionRecord } from './push/rows.js';
export type { Actor, IdentityHints, IdentitySettings, Tokens } from './context.js';

type Args<F> = F extends (deps: IdentityDeps, ...args: infer A) => unknown ? A : never;

export class IdentityApp {
  private readonly deps: IdentityDeps;

  constructor(
    db: Database,
    store: EventStore,
    signer: TokenSigner,
    revocations: RevocationList,
    settings: IdentitySettings,
    logger: Logger,
    clock: Clock = systemClock,
    hints: IdentityHints = NO_HINTS,
  ) {
    this.deps = { db, store, signer, revocations, settings, logger, clock, hashing: new HashQueue(settings.hashQueue), hints };
  }

  registerUser(...a: Args<typeof registerUser>): Promise<PublicUser> {
    return registerUser(this.deps, ...a);
  }

  registerDevice(...a: Args<typeof registerDevice>): Promise<{ device: DeviceRecord; tokens: Tokens }> {
    return registerDevice(this.deps, ...a);
  }

  login(...a: Args<typeof login>): Promise<{ userId: string; tokens: Tokens }> {
    return login(this.deps, ...a);
  }

  refresh(...a: Args<typeof refresh>): Promise<Tokens> {
    return refresh(this.deps, ...a);
  }

  logout(actor: Actor): Promise<void> {
    return logout(this.deps, actor);
  }

  /** Revokes a device; with a device list (optional: a device without the identity key can't sign one) the next list is stored in the same step. */
  revokeDevice(...a: Args<typeof revokeDevice>): Promise<string> {
    return revokeDevice(this.deps, ...a);
  }

  publishDeviceList(...a: Args<typeof publishDeviceList>): Promise<number> {
    return publishDeviceList(this.deps, ...a);
  }

  getAccount(actor: Actor): Promise<{ user: PublicUser; devices: DeviceRecord[]; deviceList: string | null }> {
    return getAccount(this.deps, actor);
  }

  updateProfile(...a: Args<typeof updateProfile>): Promise<PublicUser> {
    return updateProfile(this.deps, ...a);
  }

  changePassword(...a: Args<typeof changePassword>): Promise<void> {
    return changePassword(this.deps, ...a);
  }

  /** Deletes the account; the device list (optional) is the closing list: next version, no devices. */
  deleteAccount(...a: Args<typeof deleteAccount>): Promise<void> {
    return deleteAccount(this.deps, ...a);
  }

  findUser(rawUsername: unknown): Promise<PublicUser> {
    return findUser(this.deps, rawUsername);
  }

  getUser(rawUserId: unknown): Promise<PublicUser> {
    return getUser(this.deps, rawUserId);
  }

  listDevices(rawUserId: unknown): Promise<{ identityKey: string | null; devices: DeviceRecord[]; deviceList: string | null }> {
    return listDevices(this.deps, rawUserId);
  }

  /** Stores the caller's own device's Web Push subscription (docs/push.md). */
  setPushSubscription(...a: Args<typeof setPushSubscription>): Promise<PushSubscriptionRecord> {
    return setPushSubscription(this.deps, ...a);
  }

  deletePushSubscription(...a: Args<typeof deletePushSubscription>): Promise<boolean> {
    return deletePushSubscription(this.deps, ...a);
  }

  /** Delivery's look-up: subscriptions of active devices by device ids or user ids. */
  listPushSubscriptions(...a: Args<typeof listPushSubscriptions>): Promise<PushSubscriptionRecord[]> {
    return listPushSubscriptions(this.deps, ...a);
  }

  /** Delivery, after a 404/410 from the push service. */
  deletePushSubscriptionByEndpoint(...a: Args<typeof deletePushSubscriptionByEndpoint>): Promise<boolean> {
    return deletePushSubscriptionByEndpoint(this.deps, ...a);
  }

  jwks(): string {
    return this.deps.signer.jwksJson();
  }
}
