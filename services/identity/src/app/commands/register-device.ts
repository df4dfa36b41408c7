// RegisterDevice: a device of an account whose password the caller knows, certified by the
// account identity key (set here on the first device, or reset), with its first session and,
// once the account publishes lists, the next signed device list.
import { randomUUID } from 'node:crypto';
import { AppError, failedPrecondition } from '@bil/runtime';
import { deviceDecider, deviceStream } from '../../domain/device/device.js';
import { sessionDecider, sessionStream } from '../../domain/session/session.js';
import { deviceListVersionOf, userDecider, userStream } from '../../domain/user/user.js';
import { validateEd25519Key, validateEncryptionKey, validateIssuedAt, validateName, validateUuid, verifyCertificate } from '../../domain/validation.js';
import type { IdentityDeps, Tokens } from '../context.js';
import { checkPassword } from '../credentials.js';
import { deviceListRequired, parseDeviceList } from '../device-lists.js';
import { publishInTx } from '../own-list.js';
import type { DeviceRecord } from '../rows.js';
import { revokeAllDevices } from '../sessions.js';
import { newRefreshToken } from '../tokens.js';

export async function registerDevice(deps: IdentityDeps, input: {
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
  const now = deps.clock.now();
  const name = validateName(input.deviceName, 'device_name', 1, 64);
  const encryptionKey = validateEncryptionKey(input.encryptionKey);
  const signingKey = validateEd25519Key(input.signingKey, 'signing_key');
  const identityKey = validateEd25519Key(input.identityKey, 'identity_key');
  const issuedAt = validateIssuedAt(input.certificateIssuedAt, now.getTime());
  const chosenId = input.deviceId === undefined || input.deviceId === '' ? null : validateUuid(input.deviceId, 'device_id');
  const user = await checkPassword(deps, input.username, input.password);
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
  const refreshExpiresAt = new Date(now.getTime() + deps.settings.refreshTtlSeconds * 1000);
  const iso = now.toISOString();

  const revokedDevices = await deps.db.tx(async (tx) => {
    const { events } = await deps.store.handleIn(
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
      revoked = await revokeAllDevices(deps, tx, user.userId, 'identity_reset', iso);
    } else {
      const [{ n }] = (await tx.query<{ n: string }>(
        `SELECT count(*) AS n FROM identity.devices WHERE user_id = ? AND status = 'active'`,
        [user.userId],
      )) as [{ n: string }];
      if (Number(n) >= deps.settings.maxDevicesPerUser) {
        throw failedPrecondition('too_many_devices', `an account can have at most ${deps.settings.maxDevicesPerUser} devices; revoke one first`);
      }
    }
    await deps.store.handleIn(tx, deviceDecider, deviceStream(deviceId), {
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
    await deps.store.handleIn(tx, sessionDecider, sessionStream(sessionId), {
      type: 'StartSession',
      sessionId,
      userId: user.userId,
      deviceId,
      tokenHash: refresh.hash,
      expiresAt: refreshExpiresAt.toISOString(),
      now: iso,
    });
    if (list) await publishInTx(deps, tx, user.userId, list, iso);
    return revoked;
  });
  await deps.revocations.revoke('device', revokedDevices);
  const access = await deps.signer.issue({ userId: user.userId, deviceId, sessionId }, now);
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
