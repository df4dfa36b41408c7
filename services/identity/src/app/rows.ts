// Read-model rows of the identity service and their public shapes.
import { notFound, unauthenticated, AppError } from '@bil/runtime';
import type { ActiveUser, UserState } from '../domain/user/user.js';
import type { DeviceKeys } from '../domain/device/device.js';

export interface PublicUser {
  userId: string;
  username: string;
  displayName: string;
  identityKey: string | null;
  identityKeyChangedAt: string | null;
  createdAt: string;
}

export interface DeviceRecord extends DeviceKeys {
  deviceId: string;
  userId: string;
  name: string;
  createdAt: string;
}

export interface UserRow {
  user_id: string;
  username: string;
  display_name: string;
  identity_key: string | null;
  identity_key_changed_at: Date | null;
  status: 'active' | 'deleted';
  /** The latest signed device list (JSON text), or null. */
  device_list: string | null;
  device_list_version: number;
  created_at: Date;
}

export interface DeviceRow {
  device_id: string;
  user_id: string;
  name: string;
  encryption_key: string;
  signing_key: string;
  certificate: string;
  certificate_issued_at: string;
  created_at: Date;
}

export function usernameTaken(): AppError {
  return new AppError('already_exists', 'username_taken', 'this username is taken');
}

export function requireActiveUser(state: UserState): ActiveUser {
  if (state.status !== 'active') throw unauthenticated('account_deleted', 'this account no longer exists');
  return state;
}

export function toPublicUser(u: ActiveUser): PublicUser {
  return {
    userId: u.userId,
    username: u.username,
    displayName: u.displayName,
    identityKey: u.identityKey,
    identityKeyChangedAt: u.identityKeyChangedAt,
    createdAt: u.createdAt,
  };
}

export function rowToPublicUser(r: UserRow): PublicUser {
  return {
    userId: r.user_id,
    username: r.username,
    displayName: r.display_name,
    identityKey: r.identity_key,
    identityKeyChangedAt: r.identity_key_changed_at ? new Date(r.identity_key_changed_at).toISOString() : null,
    createdAt: new Date(r.created_at).toISOString(),
  };
}

export function rowToDevice(r: DeviceRow): DeviceRecord {
  return {
    deviceId: r.device_id,
    userId: r.user_id,
    name: r.name,
    encryptionKey: r.encryption_key,
    signingKey: r.signing_key,
    certificate: r.certificate,
    certificateIssuedAt: Number(r.certificate_issued_at),
    createdAt: new Date(r.created_at).toISOString(),
  };
}

export const noSuchUser = () => notFound('user_not_found', 'no such user');
