// The account's devices (client.devices): listing them checked against the
// identity key, revoking one with the next signed list, publishing a due list,
// and linking a new device (request, approval, completion; docs/sdk.md).
import { fromBase64Url, generateDeviceKeys, identityKeyFromSeed, type DeviceKeyPair, type SignedDeviceList } from '@bil/crypto';
import type { Account } from './account.js';
import type { ClientCore, LocalAccount } from './client-core.js';
import { nextOwnList, usableDevices } from './device-lists.js';
import { BilApiError, BilStateError } from './errors.js';
import { createLinkRequest, openLinkApproval, parseLinkRequest, sealLinkApproval, type LinkApproval, type LinkRequest } from './linking.js';
import { withListFallback, type MeJson, type OwnList } from './own-list.js';
import { toDevice, type Device, type DeviceJson, type TokensJson } from './wire.js';

/** One of the caller's own devices. */
export interface OwnDevice extends Device {
  /** This is the device the client runs on. */
  readonly current: boolean;
  /** The certificate verifies under this device's account identity key. */
  readonly certified: boolean;
  /** In the account's latest signed device list with the same keys (for an account without a list: equals `certified`). */
  readonly listed: boolean;
}

/** What `devices.revoke` did. */
export interface RevokeResult {
  readonly deviceId: string;
  /**
   * The next signed device list went with the revocation. False when this
   * device doesn't hold the identity key (it can't sign one): the server
   * revoked the device anyway, and the next device holding the key that sees
   * the change publishes the list (automatically, in `devices.list()` or when
   * it looks up its own devices); until then contacts still see the older list.
   */
  readonly deviceListPublished: boolean;
  /**
   * The revoked device held the account identity key (this client knows it
   * did: it linked it sharing the key, was linked by it, or is it). The key
   * can still certify devices and sign lists wherever it was copied: reset
   * the identity (`devices.resetIdentity`) to be sure it no longer counts.
   */
  readonly identityResetAdvised: boolean;
}

export interface DevicesApi {
  /** The account's active devices, each checked against this device's identity key. */
  list(): Promise<OwnDevice[]>;
  /**
   * Revokes a device of the account (with the next signed device list if this
   * device holds the identity key); revoking this device also clears the key
   * store. See {@link RevokeResult} for the list and the reset advice.
   */
  revoke(deviceId: string): Promise<RevokeResult>;
  /** New device, step 1: generates keys and returns the request to show the approving device. */
  linkRequest(options?: { deviceName?: string }): Promise<LinkRequest>;
  /**
   * Existing device holding the identity key, step 2: certifies the request's
   * keys, chooses the new device's id and signs the next device list naming
   * it. `shareIdentityKey` (default false) also hands over the identity
   * private key: the new device can then approve links and sign lists, and
   * whoever steals it can certify devices until an identity reset.
   */
  approveLink(request: LinkRequest | string, options?: { shareIdentityKey?: boolean }): Promise<LinkApproval>;
  /**
   * Publishes the account's next signed device list if it is due (this device
   * must hold the identity key): the first list of an account from before
   * signed lists, or the list after a revocation made by a device without the
   * key. Returns the version published, or null if nothing was due.
   */
  syncList(): Promise<number | null>;
  /** New device, step 3: opens the approval and registers with the account password. */
  completeLink(params: { approval: LinkApproval | string; password: string }): Promise<LocalAccount>;
  /**
   * Registers this client as a new device under a new account identity key;
   * the server revokes every other device, and contacts see a changed safety
   * number. For a device without a profile, pass `username` and `userId`.
   */
  resetIdentity(params: { password: string; deviceName?: string; username?: string; userId?: string }): Promise<LocalAccount>;
}

interface PendingLink {
  request: LinkRequest;
  keys: DeviceKeyPair;
}

export class Devices {
  #pendingLink: PendingLink | null = null;

  constructor(
    private readonly core: ClientCore,
    private readonly ownList: OwnList,
    private readonly account: Account,
  ) {}

  async list(): Promise<OwnDevice[]> {
    const profile = await this.core.requireProfile();
    const res = await this.core.call<MeJson>('GET', '/v1/me');
    const own = await this.ownList.state(profile, res);
    await this.ownList.sync(profile, own);
    const ok = new Set(own.certified.map((d) => d.deviceId));
    const listed = new Set(usableDevices(own.list, own.certified).map((d) => d.deviceId));
    return res.devices.map((d) => ({
      ...toDevice(d),
      current: d.device_id === profile.deviceId,
      certified: ok.has(d.device_id),
      listed: listed.has(d.device_id),
    }));
  }

  async syncList(): Promise<number | null> {
    const profile = await this.core.requireProfile();
    return this.ownList.sync(profile, await this.ownList.fetchState(profile));
  }

  async revoke(deviceId: string): Promise<RevokeResult> {
    const profile = await this.core.requireProfile();
    let next: SignedDeviceList | undefined;
    if (profile.identitySeed !== null) {
      const own = await this.ownList.fetchState(profile);
      next = nextOwnList({ identitySeed: profile.identitySeed, userId: profile.userId, current: own.list, certified: own.certified, remove: deviceId, now: this.core.now() });
    }
    const published = await withListFallback(next, (list) =>
      this.core.call('DELETE', `/v1/devices/${encodeURIComponent(deviceId)}`, list ? { device_list: list } : undefined),
    );
    const identityResetAdvised = deviceId !== profile.deviceId && (profile.seedHolders ?? []).includes(deviceId);
    if (deviceId === profile.deviceId) {
      await this.core.forget();
    } else {
      if (published && next) await this.ownList.pinPublished(profile, next);
      const p = this.core.profile();
      if (p?.seedHolders?.includes(deviceId)) await this.core.commit({ ...p, seedHolders: p.seedHolders.filter((d) => d !== deviceId) });
    }
    return { deviceId, deviceListPublished: published, identityResetAdvised };
  }

  async linkRequest(deviceName = 'linked device'): Promise<LinkRequest> {
    await this.core.ready();
    this.core.requireNoProfile();
    const keys = await generateDeviceKeys();
    const request = createLinkRequest(keys, deviceName);
    this.#pendingLink = { request, keys };
    return request;
  }

  async approveLink(value: LinkRequest | string, shareIdentityKey: boolean): Promise<LinkApproval> {
    const profile = await this.core.requireProfile();
    if (profile.identitySeed === null) {
      throw new BilStateError('identity_key_not_held', 'this device does not hold the account identity key; approve the link from one that does');
    }
    const request = await parseLinkRequest(value);
    // The next list: the verified current one (only devices still active) plus the new device under an id chosen here.
    const own = await this.ownList.fetchState(profile);
    const now = this.core.now();
    const deviceId = globalThis.crypto.randomUUID();
    const add = { device_id: deviceId, encryption_key: request.encryption_key, signing_key: request.signing_key, added_at: now };
    const deviceList = nextOwnList({ identitySeed: profile.identitySeed, userId: profile.userId, current: own.list, certified: own.certified, add, now });
    const identity = identityKeyFromSeed(fromBase64Url(profile.identitySeed, 32));
    let approval: LinkApproval;
    try {
      approval = await sealLinkApproval({
        request,
        identity,
        userId: profile.userId,
        username: profile.username,
        shareIdentityKey,
        deviceId,
        deviceList,
        approverDeviceId: profile.deviceId,
        now,
      });
    } finally {
      identity.secretKey.fill(0);
    }
    const p = this.core.profile();
    if (shareIdentityKey && p) await this.core.commit({ ...p, seedHolders: [...new Set([...(p.seedHolders ?? [profile.deviceId]), deviceId])] });
    return approval;
  }

  async completeLink(approval: LinkApproval | string, password: string): Promise<LocalAccount> {
    await this.core.ready();
    this.core.requireNoProfile();
    const pending = this.#pendingLink;
    if (!pending) throw new BilStateError('no_pending_link', 'no link request pending on this client: call devices.linkRequest() first');
    const grant = await openLinkApproval({ approval, request: pending.request, keys: pending.keys });
    const res = await this.core.transport.request<{ device: DeviceJson; tokens: TokensJson }>('POST', '/v1/auth/devices', {
      body: {
        username: grant.username,
        password,
        device_name: pending.request.device_name,
        encryption_key: pending.request.encryption_key,
        signing_key: pending.request.signing_key,
        identity_key: grant.identity_key,
        certificate: grant.certificate,
        certificate_issued_at: grant.issued_at,
        ...(grant.device_id !== undefined ? { device_id: grant.device_id, device_list: grant.device_list } : {}),
      },
    });
    if (res.device.user_id !== grant.user_id || (grant.device_id !== undefined && res.device.device_id !== grant.device_id)) {
      throw new BilApiError({ status: 201, code: 'invalid_response', message: 'the device was registered to another user' });
    }
    const account = await this.account.adopt({
      userId: grant.user_id,
      username: grant.username,
      device: res.device,
      tokens: res.tokens,
      keys: pending.keys,
      identityKey: grant.identity_key,
      identitySeed: grant.identity_seed === '' ? null : grant.identity_seed,
      deviceList: grant.device_list,
      seedHolders: grant.approver_device_id !== undefined ? [grant.approver_device_id] : [],
    });
    this.#pendingLink = null;
    return account;
  }
}
