// Signed device lists on the server side (docs/identity.md "Signed device
// lists"): the identity service stores the latest list an account published
// and refuses one that doesn't verify under the account identity key or
// doesn't name exactly the account's active devices. The version rule lives in
// the user decider. Clients never trust the server's word on lists: these
// checks only keep honest accounts consistent and bad input out.
import { MAX_DEVICE_LIST_CHARS } from '@bil/proto/limits';
import { verifyDeviceList } from '@bil/crypto';
import { failedPrecondition, invalidArgument, type Sql } from '@bil/runtime';

/** Largest accepted device list as JSON text (64 devices with 4096-bit keys fit). */
export { MAX_DEVICE_LIST_CHARS } from '@bil/proto/limits';

export interface ParsedDeviceList {
  readonly version: number;
  /** The list as stored and served (JSON text of `{payload, signature}`). */
  readonly text: string;
  readonly devices: readonly { deviceId: string; encryptionKey: string; signingKey: string }[];
}

const invalid = (reason: string) =>
  invalidArgument('invalid_device_list', `device_list ${reason}`, { field: 'device_list', reason });

/**
 * Parses and verifies a signed device list sent as JSON text. Empty or absent
 * is `null` (no list sent); anything else must be a list of `userId` that
 * verifies under `identityKey` (400 `invalid_device_list` otherwise).
 */
export async function parseDeviceList(raw: unknown, ctx: { userId: string; identityKey: string }): Promise<ParsedDeviceList | null> {
  if (raw === undefined || raw === null || raw === '') return null;
  if (typeof raw !== 'string') throw invalid('must be a signed device list');
  if (raw.length > MAX_DEVICE_LIST_CHARS) throw invalid(`is longer than ${MAX_DEVICE_LIST_CHARS} characters`);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw invalid('is not JSON');
  }
  let list;
  try {
    list = await verifyDeviceList(value, ctx.identityKey, { userId: ctx.userId });
  } catch {
    throw invalid('does not verify under the account identity key (signature, user, keys or shape)');
  }
  return {
    version: list.version,
    text: JSON.stringify(list.signed),
    devices: list.devices.map((d) => ({ deviceId: d.device_id, encryptionKey: d.encryption_key, signingKey: d.signing_key })),
  };
}

/**
 * Checks, inside the transaction that made the change, that the list names
 * exactly the account's active devices with their registered keys (409
 * `device_list_mismatch` otherwise, naming the differences).
 */
export async function requireListMatchesActive(tx: Sql, userId: string, list: ParsedDeviceList): Promise<void> {
  const active = await tx.query<{ device_id: string; encryption_key: string; signing_key: string }>(
    `SELECT device_id, encryption_key, signing_key FROM identity.devices WHERE user_id = ? AND status = 'active'`,
    [userId],
  );
  const listed = new Map(list.devices.map((d) => [d.deviceId, d]));
  const missing = active.filter((a) => !listed.has(a.device_id)).map((a) => a.device_id);
  const activeIds = new Map(active.map((a) => [a.device_id, a]));
  const unexpected = list.devices
    .filter((d) => {
      const a = activeIds.get(d.deviceId);
      return !a || a.encryption_key !== d.encryptionKey || a.signing_key !== d.signingKey;
    })
    .map((d) => d.deviceId);
  if (missing.length || unexpected.length) {
    throw failedPrecondition('device_list_mismatch', "the device list does not name exactly the account's active devices and their keys", {
      missing_device_ids: missing,
      unexpected_device_ids: unexpected,
    });
  }
}

/** 409 `device_list_required`: an account that has a list must publish the next one with every added device. */
export function deviceListRequired(): Error {
  return failedPrecondition(
    'device_list_required',
    'this account publishes signed device lists: send the next list (device_list) signed by the identity key',
  );
}

/** Whether a stored list closes the account (signed on deletion: no devices). */
export function isClosingList(text: string | null): boolean {
  if (!text) return false;
  try {
    const v = JSON.parse(text) as { payload?: { devices?: unknown } };
    return Array.isArray(v.payload?.devices) && v.payload.devices.length === 0;
  } catch {
    return false;
  }
}
