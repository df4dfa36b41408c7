// Maps identity's gRPC messages (camelCase, 64-bit integers as strings) to the
// public JSON shapes (snake_case, integers as numbers) and back. The JSON
// types are derived from the API's schemas (@bil/proto/rest), shared with the SDK.
import type { DeviceJson, DeviceListJson, TokensJson, UserJson } from '@bil/proto/rest';
import type { Device, PublicUser, TokenPair } from './identity-client.js';

export type { DeviceJson, TokensJson, UserJson };

export function userJson(u: PublicUser | null | undefined): UserJson {
  return {
    user_id: u?.userId ?? '',
    username: u?.username ?? '',
    display_name: u?.displayName ?? '',
    identity_key: u?.identityKey ?? '',
    identity_key_changed_at: u?.identityKeyChangedAt ?? '',
    created_at: u?.createdAt ?? '',
  };
}

/**
 * A 64-bit integer from proto-loader (a decimal string) as a JSON number. Every
 * value the gateway serves here (milliseconds since the epoch) is far below
 * 2^53, so nothing is lost.
 */
export function int64ToNumber(v: string | number | null | undefined): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string' || v === '') return 0;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new RangeError('64-bit value outside the safe integer range');
  return n;
}

export function deviceJson(d: Device): DeviceJson {
  return {
    device_id: d.deviceId,
    user_id: d.userId,
    name: d.name,
    encryption_key: d.encryptionKey,
    signing_key: d.signingKey,
    certificate: d.certificate,
    certificate_issued_at: int64ToNumber(d.certificateIssuedAt),
    created_at: d.createdAt,
  };
}

/**
 * A signed device list from identity (JSON text, verified when it was stored)
 * as the JSON object the API serves; "" (never published) is null.
 */
export function deviceListJson(text: string | null | undefined): DeviceListJson | null {
  if (!text) return null;
  return JSON.parse(text) as DeviceListJson;
}

/** A device list from a request as the JSON text identity takes ("" when absent). */
export function deviceListText(list: Record<string, unknown> | undefined): string {
  return list === undefined ? '' : JSON.stringify(list);
}

export function tokensJson(t: TokenPair | null | undefined): TokensJson {
  return {
    access_token: t?.accessToken ?? '',
    access_token_expires_at: t?.accessTokenExpiresAt ?? '',
    refresh_token: t?.refreshToken ?? '',
    refresh_token_expires_at: t?.refreshTokenExpiresAt ?? '',
    token_type: t?.tokenType || 'Bearer',
    session_id: t?.sessionId ?? '',
  };
}
