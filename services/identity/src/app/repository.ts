// Read-model look-ups the commands and queries share: users by id or username, an account's active devices.
import { usernameKey } from '../domain/validation.js';
import type { IdentityDeps } from './context.js';
import { rowToDevice, type DeviceRecord, type DeviceRow, type UserRow } from './rows.js';

export async function userRow(deps: IdentityDeps, userId: string): Promise<UserRow | undefined> {
  const [row] = await deps.db.query<UserRow>(`SELECT * FROM identity.users WHERE user_id = ?`, [userId]);
  return row;
}

export async function findUserRow(deps: IdentityDeps, username: string): Promise<UserRow | undefined> {
  const [row] = await deps.db.query<UserRow>(`SELECT * FROM identity.users WHERE username_key = ?`, [usernameKey(username)]);
  return row;
}

export async function listActiveDevices(deps: IdentityDeps, userId: string): Promise<DeviceRecord[]> {
  const rows = await deps.db.query<DeviceRow>(
    `SELECT * FROM identity.devices WHERE user_id = ? AND status = 'active' ORDER BY created_at, device_id`,
    [userId],
  );
  return rows.map(rowToDevice);
}
