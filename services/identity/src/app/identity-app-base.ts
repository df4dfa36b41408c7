// The identity application's shared plumbing: its dependencies and the
// helpers every command uses (password check, sessions, the clock,
// read-model queries). IdentityApp (identity-app.ts) holds the commands.
import { randomUUID } from 'node:crypto';
import {
  failedPrecondition,
  unauthenticated,
  systemClock,
  type Clock,
  type Database,
  type EventStore,
  type Logger,
  type RevocationList,
  type Tx,
} from '@bil/runtime';
import { userDecider, userStream, type ActiveUser } from '../domain/user/user.js';
import { deviceDecider, deviceStream, type RevocationReason } from '../domain/device/device.js';
import { sessionDecider, sessionStream, type SessionEndReason } from '../domain/session/session.js';
import { usernameKey } from '../domain/validation.js';
import { burnPasswordCheck, hashPassword, verifyPassword, type ScryptParams } from './password.js';
import { HashQueue, ensureCallerWaiting, type HashQueueSettings } from './hash-queue.js';
import { newRefreshToken, type TokenSigner } from './tokens.js';
import { parseDeviceList, requireListMatchesActive, type ParsedDeviceList } from './device-lists.js';
import {
  noSuchUser,
  rowToDevice,
  type DeviceRecord,
  type DeviceRow,
  type UserRow,
} from './rows.js';

export interface Actor {
  userId: string;
  deviceId: string;
  sessionId: string;
}

export interface Tokens {
  accessToken: string;
  accessTokenExpiresAt: string;
  refreshToken: string;
  refreshTokenExpiresAt: string;
  sessionId: string;
}

export interface IdentitySettings {
  refreshTtlSeconds: number;
  maxDevicesPerUser: number;
  scrypt: ScryptParams;
  /** The password-hashing queue's bounds (default DEFAULT_HASH_QUEUE). */
  hashQueue?: HashQueueSettings;
}

export const invalidCredentials = () => unauthenticated('invalid_credentials', 'wrong username or password');

export abstract class IdentityAppBase {
  constructor(
    protected readonly db: Database,
    protected readonly store: EventStore,
    protected readonly signer: TokenSigner,
    protected readonly revocations: RevocationList,
    protected readonly settings: IdentitySettings,
    protected readonly logger: Logger,
    protected readonly clock: Clock = systemClock,
  ) {}

  private queue?: HashQueue;

  /** Every scrypt call of this process goes through one bounded queue (hash-queue.ts). */
  protected get hashing(): HashQueue {
    return (this.queue ??= new HashQueue(this.settings.hashQueue));
  }

  /** Hashes a new password in turn; throws if the caller gave up meanwhile (nothing may be saved then). */
  protected async queuedHash(account: string, password: string): Promise<string> {
    const hash = await this.hashing.run(account, () => hashPassword(password, this.settings.scrypt));
    ensureCallerWaiting();
    return hash;
  }

  /** Checks a password against a stored hash in turn. */
  protected async queuedVerify(account: string, password: string, stored: string): Promise<boolean> {
    const ok = await this.hashing.run(account, () => verifyPassword(password, stored));
    ensureCallerWaiting();
    return ok;
  }

  /** Parses a list the caller sent for its own account, verified under the account identity key. */
  protected async parseOwnList(actor: Actor, raw: unknown): Promise<ParsedDeviceList | null> {
    if (raw === undefined || raw === '') return null;
    const row = await this.userRow(actor.userId);
    if (!row || row.status !== 'active') throw noSuchUser();
    if (!row.identity_key) throw failedPrecondition('no_identity_key', 'the account has no identity key yet');
    return parseDeviceList(raw, { userId: actor.userId, identityKey: row.identity_key });
  }

  /** Checks the list against the active devices (after this transaction's change) and appends it (version rule in the decider). */
  protected async publishInTx(tx: Tx, userId: string, list: ParsedDeviceList, now: string): Promise<void> {
    await requireListMatchesActive(tx, userId, list);
    await this.store.handleIn(tx, userDecider, userStream(userId), publishCommand(list, now));
  }

  protected async userRow(userId: string): Promise<UserRow | undefined> {
    const [row] = await this.db.query<UserRow>(`SELECT * FROM identity.users WHERE user_id = ?`, [userId]);
    return row;
  }

  protected async checkPassword(rawUsername: unknown, rawPassword: unknown): Promise<ActiveUser> {
    const password = typeof rawPassword === 'string' ? rawPassword.normalize('NFKC') : '';
    const username = typeof rawUsername === 'string' && rawUsername.length <= 64 ? rawUsername : '';
    const row = username ? await this.findUserRow(username) : undefined;
    const account = `u:${username.toLowerCase()}`;
    if (!row || row.status !== 'active' || password.length === 0 || password.length > 1024) {
      await this.hashing.run(account, () => burnPasswordCheck(password.slice(0, 1024)));
      throw invalidCredentials();
    }
    const loaded = await this.store.load(this.db, userDecider, userStream(row.user_id));
    if (loaded.state.status !== 'active' || !(await this.queuedVerify(account, password, loaded.state.passwordHash))) throw invalidCredentials();
    return loaded.state;
  }

  protected async startSession(userId: string, deviceId: string): Promise<Tokens> {
    const now = this.clock.now();
    const sessionId = randomUUID();
    const refresh = newRefreshToken(sessionId, 1);
    const expiresAt = new Date(now.getTime() + this.settings.refreshTtlSeconds * 1000);
    await this.store.handle(sessionDecider, sessionStream(sessionId), {
      type: 'StartSession',
      sessionId,
      userId,
      deviceId,
      tokenHash: refresh.hash,
      expiresAt: expiresAt.toISOString(),
      now: now.toISOString(),
    });
    const access = await this.signer.issue({ userId, deviceId, sessionId }, now);
    return {
      accessToken: access.token,
      accessTokenExpiresAt: access.expiresAt.toISOString(),
      refreshToken: refresh.token,
      refreshTokenExpiresAt: expiresAt.toISOString(),
      sessionId,
    };
  }

  protected async endSessions(tx: Tx, where: string, params: unknown[], reason: SessionEndReason, now: string): Promise<string[]> {
    const rows = await tx.query<{ session_id: string }>(
      `SELECT session_id FROM identity.sessions WHERE status = 'active' AND ${where}`,
      params,
    );
    for (const r of rows) {
      await this.store.handleIn(tx, sessionDecider, sessionStream(r.session_id), { type: 'EndSession', reason, now });
    }
    return rows.map((r) => r.session_id);
  }

  protected async revokeAllDevices(tx: Tx, userId: string, reason: RevocationReason, now: string): Promise<string[]> {
    const rows = await tx.query<{ device_id: string }>(
      `SELECT device_id FROM identity.devices WHERE user_id = ? AND status = 'active'`,
      [userId],
    );
    for (const r of rows) {
      await this.store.handleIn(tx, deviceDecider, deviceStream(r.device_id), { type: 'RevokeDevice', byUserId: userId, reason, now });
    }
    await this.endSessions(tx, `user_id = ?`, [userId], reason === 'account_deleted' ? 'account_deleted' : 'device_revoked', now);
    return rows.map((r) => r.device_id);
  }

  protected async findUserRow(username: string): Promise<UserRow | undefined> {
    const [row] = await this.db.query<UserRow>(`SELECT * FROM identity.users WHERE username_key = ?`, [usernameKey(username)]);
    return row;
  }

  protected async listActiveDevices(userId: string): Promise<DeviceRecord[]> {
    const rows = await this.db.query<DeviceRow>(
      `SELECT * FROM identity.devices WHERE user_id = ? AND status = 'active' ORDER BY created_at, device_id`,
      [userId],
    );
    return rows.map(rowToDevice);
  }
}

export function publishCommand(list: ParsedDeviceList, now: string) {
  return { type: 'PublishDeviceList' as const, version: list.version, deviceList: list.text, deviceCount: list.devices.length, now };
}
