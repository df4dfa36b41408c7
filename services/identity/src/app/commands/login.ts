// Login: a session for an existing, active device of the account (password checked first).
import { notFound, permissionDenied } from '@bil/runtime';
import { deviceDecider, deviceStream } from '../../domain/device/device.js';
import { validateUuid } from '../../domain/validation.js';
import type { IdentityDeps, Tokens } from '../context.js';
import { checkPassword } from '../credentials.js';
import { startSession } from '../sessions.js';

export async function login(deps: IdentityDeps, input: { username: unknown; password: unknown; deviceId: unknown }): Promise<{ userId: string; tokens: Tokens }> {
  const deviceId = validateUuid(input.deviceId, 'device_id');
  const user = await checkPassword(deps, input.username, input.password);
  const device = await deps.store.load(deps.db, deviceDecider, deviceStream(deviceId));
  if (device.state.status === 'none' || device.state.userId !== user.userId) {
    throw notFound('device_not_found', 'this account has no such device');
  }
  if (device.state.status === 'revoked') throw permissionDenied('device_revoked', 'this device was revoked; register it again');
  return { userId: user.userId, tokens: await startSession(deps, user.userId, deviceId) };
}
