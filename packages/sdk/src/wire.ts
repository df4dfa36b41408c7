// The JSON shapes of the public REST API (docs/api.md "Objects"), exactly as
// the gateway sends them, and their mapping to the SDK's camelCase types.

export interface UserJson {
  user_id: string;
  username: string;
  display_name: string;
  identity_key: string;
  identity_key_changed_at: string;
  created_at: string;
}

export interface DeviceJson {
  device_id: string;
  user_id: string;
  name: string;
  encryption_key: string;
  signing_key: string;
  certificate: string;
  certificate_issued_at: number;
  created_at: string;
}

export interface TokensJson {
  access_token: string;
  access_token_expires_at: string;
  refresh_token: string;
  refresh_token_expires_at: string;
  token_type: string;
  session_id: string;
}

export interface DirectoryJson {
  user_id: string;
  identity_key: string;
  devices: DeviceJson[];
}

/** A user as the API describes one. */
export interface User {
  readonly userId: string;
  readonly username: string;
  /** Empty when unset. */
  readonly displayName: string;
  /** Account identity key (Ed25519, base64url) as the server reports it; empty before the first device. */
  readonly identityKey: string;
  /** RFC 3339; empty if never set. */
  readonly identityKeyChangedAt: string;
  readonly createdAt: string;
}

/** A device as the API lists one (unverified: see `contacts.devices`). */
export interface Device {
  readonly deviceId: string;
  readonly userId: string;
  readonly name: string;
  readonly encryptionKey: string;
  readonly signingKey: string;
  readonly certificate: string;
  readonly certificateIssuedAt: number;
  readonly createdAt: string;
}

export function toUser(u: UserJson): User {
  return {
    userId: u.user_id,
    username: u.username,
    displayName: u.display_name,
    identityKey: u.identity_key,
    identityKeyChangedAt: u.identity_key_changed_at,
    createdAt: u.created_at,
  };
}

export function toDevice(d: DeviceJson): Device {
  return {
    deviceId: d.device_id,
    userId: d.user_id,
    name: d.name,
    encryptionKey: d.encryption_key,
    signingKey: d.signing_key,
    certificate: d.certificate,
    certificateIssuedAt: d.certificate_issued_at,
    createdAt: d.created_at,
  };
}
