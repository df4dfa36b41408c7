// Command and query handlers of the identity context: load → decide → append
// (projections run in the same transaction; the outbox publishes after
// commit). Password checks happen here, before the pure deciders run.
import { randomUUID } from 'node:crypto';
import {
  AppError,
  failedPrecondition,
  invalidArgument,
  isUniqueViolation,
  notFound,
  permissionDenied,
  unauthenticated,
} from '@bil/runtime';
import { deviceListVersionOf, userDecider, userStream, type ActiveUser } from '../domain/user/user.js';
import { deviceDecider, deviceStream } from '../domain/device/device.js';
import { sessionDecider, sessionStream, type SessionEndReason } from '../domain/session/session.js';
import {
  normalizePassword,
  validateEd25519Key,
  validateEncryptionKey,
  validateIssuedAt,
  validateName,
  validateUsername,
  validateUuid,
  verifyCertificate,
} from '../domain/validation.js';
import { hashMatches, newRefreshToken, parseRefreshToken } from './tokens.js';
import { deviceListRequired, isClosingList, parseDeviceList } from './device-lists.js';
import { IdentityAppBase, invalidCredentials, publishCommand, type Actor, type Tokens } from './identity-app-base.js';
import {
  noSuchUser,
  requireActiveUser,
  rowToPublicUser,
  toPublicUser,
  usernameTaken,
  type DeviceRecord,
  type PublicUser,
} from './rows.js';

export type { DeviceRecord, PublicUser } from './rows.js';

export type { Actor, IdentitySettings, Tokens } from './identity-app-base.js';


export class IdentityApp extends IdentityAppBase {

  async registerUser(input: { username: unknown; password: unknown; displayName?: unknown }): Promise<PublicUser> {
    const username = validateUsername(input.username);
    const password = normalizePassword(input.password);
    const displayName = validateName(input.displayName ?? '', 'display_name', 0, 64);
    const existing = await this.findUserRow(username);
    if (existing) throw usernameTaken();
    const userId = randomUUID();
    // The hash waits its turn; a caller that gave up meanwhile gets nothing saved (ensureCallerWaiting).
    const passwordHash = await this.queuedHash(`u:${username.toLowerCase()}`, password);
    try {
      const { state } = await this.store.handle(userDecider, userStream(userId), {
        type: 'RegisterUser',
        userId,
        username,
        displayName,
        passwordHash,
        now: this.clock.now().toISOString(),
      });
      return toPublicUser(state as ActiveUser);
    } catch (err) {
      if (isUniqueViolation(err, 'users_username_key_key')) throw usernameTaken();
      throw err;
    }
  }

  async registerDevice(input: {
    username: unknown;
    password: unknown;
    deviceName: unknown;
    encryptionKey: unknown;
    signingKey: unknown;
    identityKey: unknown;
    certificate: unknown;
    certificateIssuedAt: unknown;
    resetIdentity: boolean;
    /** Optional client-chosen device id, so that `deviceList` can name the new device. */
    deviceId?: unknown;
    /** The next signed device list (JSON text) listing exactly the active devices after this registration. */
    deviceList?: unknown;
  }): Promise<{ device: DeviceRecord; tokens: Tokens }> {
    const now = this.clock.now();
    const name = validateName(input.deviceName, 'device_name', 1, 64);
    const encryptionKey = validateEncryptionKey(input.encryptionKey);
    const signingKey = validateEd25519Key(input.signingKey, 'signing_key');
    const identityKey = validateEd25519Key(input.identityKey, 'identity_key');
    const issuedAt = validateIssuedAt(input.certificateIssuedAt, now.getTime());
    const chosenId = input.deviceId === undefined || input.deviceId === '' ? null : validateUuid(input.deviceId, 'device_id');
    const user = await this.checkPassword(input.username, input.password);
    let certificate: string;
    try {
      certificate = verifyCertificate({ userId: user.userId, identityKey, encryptionKey, signingKey, issuedAt }, input.certificate);
    } catch (err) {
      // The password checked out, so the caller owns the account: tell it the
      // user id the certificate must sign (a fresh install may not know it).
      if (err instanceof AppError) throw new AppError(err.kind, err.code, err.message, { ...err.details, user_id: user.userId });
      throw err;
    }
    if (user.identityKey !== null && user.identityKey !== identityKey && !input.resetIdentity) {
      throw failedPrecondition(
        'identity_key_mismatch',
        'the certificate is not from the account identity key: link this device from an existing one, or reset the identity',
      );
    }
    // Verified under the key this registration sets or repeats (checked equal to the account's above, unless a reset).
    const list = await parseDeviceList(input.deviceList, { userId: user.userId, identityKey });
    const deviceId = chosenId ?? randomUUID();
    const sessionId = randomUUID();
    const refresh = newRefreshToken(sessionId, 1);
    const refreshExpiresAt = new Date(now.getTime() + this.settings.refreshTtlSeconds * 1000);
    const iso = now.toISOString();

    const revokedDevices = await this.db.tx(async (tx) => {
      const { events } = await this.store.handleIn(
        tx,
        userDecider,
        userStream(user.userId),
        ({ state }) => {
          // An account that publishes lists keeps doing so: every added device comes with the next list.
          const hadList = state.status === 'active' && deviceListVersionOf(state) > 0;
          if (hadList && !list) throw deviceListRequired();
          return { type: 'SetIdentityKey', identityKey, reset: input.resetIdentity, now: iso };
        },
        { metadata: { actorUserId: user.userId } },
      );
      const reset = events.some((e) => e.type === 'IdentityKeySet' && 'reset' in e.data && e.data.reset);

      let revoked: string[] = [];
      if (reset) {
        revoked = await this.revokeAllDevices(tx, user.userId, 'identity_reset', iso);
      } else {
        const [{ n }] = (await tx.query<{ n: string }>(
          `SELECT count(*) AS n FROM identity.devices WHERE user_id = ? AND status = 'active'`,
          [user.userId],
        )) as [{ n: string }];
        if (Number(n) >= this.settings.maxDevicesPerUser) {
          throw failedPrecondition('too_many_devices', `an account can have at most ${this.settings.maxDevicesPerUser} devices; revoke one first`);
        }
      }
      await this.store.handleIn(tx, deviceDecider, deviceStream(deviceId), {
        type: 'RegisterDevice',
        deviceId,
        userId: user.userId,
        name,
        encryptionKey,
        signingKey,
        certificate,
        certificateIssuedAt: issuedAt,
        now: iso,
      });
      await this.store.handleIn(tx, sessionDecider, sessionStream(sessionId), {
        type: 'StartSession',
        sessionId,
        userId: user.userId,
        deviceId,
        tokenHash: refresh.hash,
        expiresAt: refreshExpiresAt.toISOString(),
        now: iso,
      });
      if (list) await this.publishInTx(tx, user.userId, list, iso);
      return revoked;
    });
    await this.revocations.revoke('device', revokedDevices);
    const access = await this.signer.issue({ userId: user.userId, deviceId, sessionId }, now);
    return {
      device: { deviceId, userId: user.userId, name, encryptionKey, signingKey, certificate, certificateIssuedAt: issuedAt, createdAt: iso },
      tokens: {
        accessToken: access.token,
        accessTokenExpiresAt: access.expiresAt.toISOString(),
        refreshToken: refresh.token,
        refreshTokenExpiresAt: refreshExpiresAt.toISOString(),
        sessionId,
      },
    };
  }

  async login(input: { username: unknown; password: unknown; deviceId: unknown }): Promise<{ userId: string; tokens: Tokens }> {
    const deviceId = validateUuid(input.deviceId, 'device_id');
    const user = await this.checkPassword(input.username, input.password);
    const device = await this.store.load(this.db, deviceDecider, deviceStream(deviceId));
    if (device.state.status === 'none' || device.state.userId !== user.userId) {
      throw notFound('device_not_found', 'this account has no such device');
    }
    if (device.state.status === 'revoked') throw permissionDenied('device_revoked', 'this device was revoked; register it again');
    return { userId: user.userId, tokens: await this.startSession(user.userId, deviceId) };
  }

  async refresh(input: { refreshToken: unknown }): Promise<Tokens> {
    const parsed = parseRefreshToken(input.refreshToken);
    if (!parsed) throw unauthenticated('invalid_refresh_token', 'the refresh token is not valid; sign in again');
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + this.settings.refreshTtlSeconds * 1000);
    const next = newRefreshToken(parsed.sessionId, parsed.generation + 1);
    const { events, state } = await this.store.handle(sessionDecider, sessionStream(parsed.sessionId), {
      type: 'RefreshSession',
      generation: parsed.generation,
      secretMatches: (stored) => hashMatches(parsed.secret, stored),
      newTokenHash: next.hash,
      expiresAt: expiresAt.toISOString(),
      now: now.toISOString(),
    });
    const ended = events.find((e) => e.type === 'SessionEnded');
    if (ended && (ended.data as { reason: SessionEndReason }).reason === 'refresh_token_reused') {
      await this.revocations.revoke('session', [parsed.sessionId]);
      this.logger.warn({ sessionId: parsed.sessionId }, 'refresh token reused; session ended');
      throw unauthenticated('refresh_token_reused', 'this refresh token was already used; the session was ended for safety');
    }
    if (ended) throw unauthenticated('session_expired', 'the session has expired; sign in again');
    if (state.status !== 'active') throw unauthenticated('invalid_refresh_token', 'the refresh token is not valid; sign in again');
    const access = await this.signer.issue({ userId: state.userId, deviceId: state.deviceId, sessionId: state.sessionId }, now);
    return {
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt.toISOString(),
      refreshToken: next.token,
      refreshTokenExpiresAt: expiresAt.toISOString(),
      sessionId: state.sessionId,
    };
  }

  async logout(actor: Actor): Promise<void> {
    await this.db.tx(async (tx) => {
      await this.store.handleIn(tx, sessionDecider, sessionStream(actor.sessionId), ({ state }) => {
        if (state.status === 'none' || state.userId !== actor.userId) throw notFound('session_not_found', 'no such session');
        return { type: 'EndSession', reason: 'logout', now: this.clock.now().toISOString() };
      });
    });
    await this.revocations.revoke('session', [actor.sessionId]);
  }

  /** Revokes a device; with `rawDeviceList` (optional: a device without the identity key can't sign one) the next list is stored in the same step. */
  async revokeDevice(actor: Actor, rawDeviceId: unknown, rawDeviceList?: unknown): Promise<string> {
    const deviceId = validateUuid(rawDeviceId, 'device_id');
    const list = await this.parseOwnList(actor, rawDeviceList);
    const now = this.clock.now().toISOString();
    await this.db.tx(async (tx) => {
      await this.store.handleIn(tx, deviceDecider, deviceStream(deviceId), { type: 'RevokeDevice', byUserId: actor.userId, reason: 'user', now });
      await this.endSessions(tx, `device_id = ?`, [deviceId], 'device_revoked', now);
      if (list) await this.publishInTx(tx, actor.userId, list, now);
    });
    await this.revocations.revoke('device', [deviceId]);
    return deviceId;
  }

  /** Stores the next signed device list of the caller's account (migration, or after a revocation by a device without the identity key). */
  async publishDeviceList(actor: Actor, rawDeviceList: unknown): Promise<number> {
    const list = await this.parseOwnList(actor, rawDeviceList);
    if (!list) throw invalidArgument('invalid_device_list', 'device_list is required', { field: 'device_list', reason: 'missing' });
    await this.db.tx((tx) => this.publishInTx(tx, actor.userId, list, this.clock.now().toISOString()));
    return list.version;
  }

  async getAccount(actor: Actor): Promise<{ user: PublicUser; devices: DeviceRecord[]; deviceList: string | null }> {
    const row = await this.userRow(actor.userId);
    if (!row || row.status !== 'active') throw noSuchUser();
    return { user: rowToPublicUser(row), devices: await this.listActiveDevices(actor.userId), deviceList: row.device_list };
  }

  async updateProfile(actor: Actor, rawDisplayName: unknown): Promise<PublicUser> {
    const displayName = validateName(rawDisplayName ?? '', 'display_name', 0, 64);
    const { state } = await this.store.handle(
      userDecider,
      userStream(actor.userId),
      { type: 'UpdateProfile', displayName, now: this.clock.now().toISOString() },
      { metadata: { actorUserId: actor.userId, actorDeviceId: actor.deviceId } },
    );
    if (state.status !== 'active') throw notFound('user_not_found', 'no such user');
    return toPublicUser(state);
  }

  async changePassword(actor: Actor, input: { oldPassword: unknown; newPassword: unknown }): Promise<void> {
    const newPassword = normalizePassword(input.newPassword, 'new_password');
    const oldPassword = typeof input.oldPassword === 'string' ? input.oldPassword.normalize('NFKC') : '';
    const loaded = await this.store.load(this.db, userDecider, userStream(actor.userId));
    const user = requireActiveUser(loaded.state);
    if (!(await this.queuedVerify(`u:${user.username.toLowerCase()}`, oldPassword, user.passwordHash))) throw invalidCredentials();
    const passwordHash = await this.queuedHash(`u:${user.username.toLowerCase()}`, newPassword);
    const now = this.clock.now().toISOString();
    const ended = await this.db.tx(async (tx) => {
      await this.store.handleIn(tx, userDecider, userStream(actor.userId), { type: 'ChangePassword', passwordHash, now });
      return this.endSessions(tx, `user_id = ? AND session_id <> ?`, [actor.userId, actor.sessionId], 'password_changed', now);
    });
    await this.revocations.revoke('session', ended);
  }

  /** Deletes the account; `rawDeviceList` (optional) is the closing list: next version, no devices. */
  async deleteAccount(actor: Actor, rawPassword: unknown, rawDeviceList?: unknown): Promise<void> {
    const loaded = await this.store.load(this.db, userDecider, userStream(actor.userId));
    const user = requireActiveUser(loaded.state);
    const password = typeof rawPassword === 'string' ? rawPassword.normalize('NFKC') : '';
    if (!(await this.queuedVerify(`u:${user.username.toLowerCase()}`, password, user.passwordHash))) throw invalidCredentials();
    const list = await this.parseOwnList(actor, rawDeviceList);
    if (list && list.devices.length > 0) {
      throw failedPrecondition('device_list_mismatch', 'the closing device list of a deleted account lists no devices', {
        missing_device_ids: [],
        unexpected_device_ids: list.devices.map((d) => d.deviceId),
      });
    }
    const now = this.clock.now().toISOString();
    await this.db.tx(async (tx) => {
      if (list) await this.store.handleIn(tx, userDecider, userStream(actor.userId), publishCommand(list, now));
      await this.store.handleIn(tx, userDecider, userStream(actor.userId), { type: 'DeleteUser', now });
      await this.revokeAllDevices(tx, actor.userId, 'account_deleted', now);
    });
    await this.revocations.revoke('user', [actor.userId]);
  }

  async findUser(rawUsername: unknown): Promise<PublicUser> {
    const username = typeof rawUsername === 'string' ? rawUsername : '';
    const row = username.length <= 64 ? await this.findUserRow(username) : undefined;
    if (!row || row.status !== 'active') throw notFound('user_not_found', 'no such user');
    return rowToPublicUser(row);
  }

  async getUser(rawUserId: unknown): Promise<PublicUser> {
    const row = await this.userRow(validateUuid(rawUserId, 'user_id'));
    if (!row || row.status !== 'active') throw noSuchUser();
    return rowToPublicUser(row);
  }

  /**
   * A user's directory entry with the latest signed device list. An account
   * deleted with a signed closing list still answers (no devices, the closing
   * list), so contacts can verify that it was closed; otherwise a deleted
   * account is `user_not_found`.
   */
  async listDevices(rawUserId: unknown): Promise<{ identityKey: string | null; devices: DeviceRecord[]; deviceList: string | null }> {
    const row = await this.userRow(validateUuid(rawUserId, 'user_id'));
    if (row?.status === 'deleted' && isClosingList(row.device_list)) {
      return { identityKey: row.identity_key, devices: [], deviceList: row.device_list };
    }
    if (!row || row.status !== 'active') throw noSuchUser();
    return { identityKey: row.identity_key, devices: await this.listActiveDevices(row.user_id), deviceList: row.device_list };
  }

  jwks(): string {
    return this.signer.jwksJson();
  }

}
