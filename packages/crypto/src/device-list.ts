// Signed device lists (docs/protocol.md, "Signed device lists"): the account
// identity key signs the account's whole device list with a version that
// only grows, so a server can neither put back a revoked device nor serve an
// older list to someone who saw a newer one.
import { canonicalBytes } from './canonical-json.js';
import { abytes, assertUint, assertUuid, equalBytes, fromBase64Url, isUuid, toBase64Url } from './encoding.js';
import { fail, failClosed } from './errors.js';
import { isVerifiedDevice, type VerifiedDevice } from './certificate.js';
import { importEncryptionPublicKey, parseSigningKey } from './keys.js';
import { ED25519_SIGNATURE_LENGTH, ed25519Sign, ed25519Verify, type Ed25519KeyPair } from './signature.js';
import { DEVICE_LIST_ENTRY_FIELDS, DEVICE_LIST_FIELDS, DEVICE_LIST_TYPE, SIGNED_STATEMENT_FIELDS, hasExactFields } from './signed-fields.js';

/** The `type` of a device-list payload (defined in signed-fields.ts). */
export { DEVICE_LIST_TYPE };
/** Most devices one list may name (the identity service allows fewer). */
export const MAX_DEVICE_LIST_DEVICES = 64;

/** One device in a list: its id and the keys its certificate vouches for. */
export interface DeviceListEntry {
  readonly device_id: string;
  /** RSA SPKI DER, base64url. */
  readonly encryption_key: string;
  /** Ed25519 public key, 32 bytes, base64url. */
  readonly signing_key: string;
  /** When the device joined the account, ms since the Unix epoch. */
  readonly added_at: number;
}

/** What the identity key signs (canonical JSON). */
export interface DeviceListPayload {
  readonly type: typeof DEVICE_LIST_TYPE;
  readonly user_id: string;
  readonly identity_key: string;
  readonly version: number;
  /** Sorted by device_id, unique. Empty: the account is closed. */
  readonly devices: readonly DeviceListEntry[];
  readonly created_at: number;
}

/** A device list as published to, and served by, the identity service. */
export interface SignedDeviceList {
  readonly payload: DeviceListPayload;
  /** Ed25519 signature by the identity key over the canonical payload, base64url. */
  readonly signature: string;
}

/** A list whose signature verified under the key the caller gave. Only {@link verifyDeviceList} makes these. */
export interface VerifiedDeviceList {
  readonly userId: string;
  readonly identityKey: string;
  readonly version: number;
  readonly devices: readonly DeviceListEntry[];
  readonly createdAt: number;
  /** The list exactly as verified (to store or forward). */
  readonly signed: SignedDeviceList;
}

const verifiedLists = new WeakSet<VerifiedDeviceList>();

const isVersion = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * The exact bytes the identity key signs: canonical JSON of the payload, UTF-8.
 * @example
 * ed25519Verify(identityKey, deviceListPayloadBytes(list.payload), fromBase64Url(list.signature));
 */
export function deviceListPayloadBytes(payload: DeviceListPayload): Uint8Array {
  return canonicalBytes({
    type: DEVICE_LIST_TYPE,
    user_id: payload.user_id,
    identity_key: payload.identity_key,
    version: payload.version,
    devices: payload.devices.map((d) => ({
      device_id: d.device_id,
      encryption_key: d.encryption_key,
      signing_key: d.signing_key,
      added_at: d.added_at,
    })),
    created_at: payload.created_at,
  });
}

/**
 * Builds and signs a device list with the account identity key. Devices are
 * sorted by id; a duplicate id, a bad id, key or time is a TypeError. An empty
 * `devices` closes the account (signed on deletion).
 * @example
 * const list = signDeviceList({ identity, userId, version: 1, devices: [entry], createdAt: Date.now() });
 */
export function signDeviceList(params: {
  identity: Ed25519KeyPair;
  userId: string;
  version: number;
  devices: readonly DeviceListEntry[];
  createdAt: number;
}): SignedDeviceList {
  const { identity, userId, version, devices, createdAt } = params;
  abytes(identity?.secretKey, 32, 'identity.secretKey');
  abytes(identity.publicKey, 32, 'identity.publicKey');
  assertUuid(userId, 'userId');
  if (!isVersion(version)) throw new TypeError('version: expected a safe integer >= 1');
  assertUint(createdAt, 'createdAt');
  if (!Array.isArray(devices) || devices.length > MAX_DEVICE_LIST_DEVICES) {
    throw new TypeError(`devices: expected an array of at most ${MAX_DEVICE_LIST_DEVICES}`);
  }
  const entries = devices.map((d) => {
    assertUuid(d?.device_id, 'device_id');
    if (typeof d.encryption_key !== 'string' || fromBase64Url(d.encryption_key).length === 0) throw new TypeError('encryption_key: expected base64url');
    try {
      parseSigningKey(d.signing_key);
    } catch {
      throw new TypeError('signing_key: expected an Ed25519 public key');
    }
    assertUint(d.added_at, 'added_at');
    return { device_id: d.device_id, encryption_key: d.encryption_key, signing_key: d.signing_key, added_at: d.added_at };
  });
  entries.sort((a, b) => (a.device_id < b.device_id ? -1 : a.device_id > b.device_id ? 1 : 0));
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.device_id === entries[i - 1]!.device_id) throw new TypeError('devices: duplicate device_id');
  }
  const payload: DeviceListPayload = {
    type: DEVICE_LIST_TYPE,
    user_id: userId,
    identity_key: toBase64Url(identity.publicKey),
    version,
    devices: entries,
    created_at: createdAt,
  };
  return { payload, signature: toBase64Url(ed25519Sign(identity.secretKey, deviceListPayloadBytes(payload))) };
}

/**
 * Verifies a signed device list under the identity key the caller trusts
 * (pinned, or its own): exact members, `type`, the key named inside equal to
 * `identityKey`, version a safe integer ≥ 1, devices sorted by id and unique,
 * strict base64url, every key by the device-record rules (RSA 3072/4096 with
 * e = 65537 and canonical DER; Ed25519 valid and not small order), and the
 * strict Ed25519 signature. With `userId`, the list must be that user's.
 * Throws {@link CannotDecryptError} on any failure.
 * @example
 * const list = await verifyDeviceList(dir.device_list, pinnedKey, { userId });
 */
export async function verifyDeviceList(
  signed: unknown,
  identityKey: string | Uint8Array,
  options: { userId?: string } = {},
): Promise<VerifiedDeviceList> {
  return failClosed(async () => {
    const key = typeof identityKey === 'string' ? fromBase64Url(identityKey, 32) : identityKey;
    abytes(key, 32);
    if (!hasExactFields(signed, SIGNED_STATEMENT_FIELDS)) fail();
    const p = signed.payload;
    if (!hasExactFields(p, DEVICE_LIST_FIELDS) || p.type !== DEVICE_LIST_TYPE) fail();
    if (!isUuid(p.user_id) || (options.userId !== undefined && p.user_id !== options.userId)) fail();
    if (typeof p.identity_key !== 'string' || !equalBytes(fromBase64Url(p.identity_key, 32), key)) fail();
    if (!isVersion(p.version) || !isTime(p.created_at)) fail();
    const list = p.devices;
    if (!Array.isArray(list) || list.length > MAX_DEVICE_LIST_DEVICES) fail();
    const devices: DeviceListEntry[] = [];
    let previous = '';
    for (const d of list as unknown[]) {
      if (!hasExactFields(d, DEVICE_LIST_ENTRY_FIELDS)) fail();
      if (!isUuid(d.device_id) || d.device_id <= previous || !isTime(d.added_at)) fail();
      previous = d.device_id;
      parseSigningKey(d.signing_key as string);
      await importEncryptionPublicKey(d.encryption_key as string);
      devices.push(Object.freeze({ device_id: d.device_id, encryption_key: d.encryption_key as string, signing_key: d.signing_key as string, added_at: d.added_at }));
    }
    const sig = fromBase64Url(signed.signature as string, ED25519_SIGNATURE_LENGTH);
    const payload: DeviceListPayload = Object.freeze({
      type: DEVICE_LIST_TYPE,
      user_id: p.user_id,
      identity_key: p.identity_key,
      version: p.version,
      devices: Object.freeze(devices),
      created_at: p.created_at,
    });
    if (!ed25519Verify(key, deviceListPayloadBytes(payload), sig)) fail();
    const verified: VerifiedDeviceList = Object.freeze({
      userId: payload.user_id,
      identityKey: payload.identity_key,
      version: payload.version,
      devices: payload.devices,
      createdAt: payload.created_at,
      signed: Object.freeze({ payload, signature: signed.signature as string }),
    });
    verifiedLists.add(verified);
    return verified;
  });
}

/**
 * True if `value` came from {@link verifyDeviceList}.
 * @example
 * if (!isVerifiedDeviceList(list)) throw new Error('verify it first');
 */
export function isVerifiedDeviceList(value: unknown): value is VerifiedDeviceList {
  return typeof value === 'object' && value !== null && verifiedLists.has(value as VerifiedDeviceList);
}

/**
 * Whether a verified device is in a verified list: same user, same identity
 * key, same device id AND the same keys. A device the server re-lists with its
 * old certified record after a revocation is not in the newer list, so it is
 * refused. Throws TypeError for unverified arguments.
 * @example
 * const usable = certified.filter((d) => deviceInList(list, d));
 */
export function deviceInList(list: VerifiedDeviceList, device: VerifiedDevice): boolean {
  if (!isVerifiedDeviceList(list)) throw new TypeError('list: not a VerifiedDeviceList (use verifyDeviceList)');
  if (!isVerifiedDevice(device)) throw new TypeError('device: not a VerifiedDevice (use verifyDevice)');
  if (device.userId !== list.userId || device.identityKey !== list.identityKey) return false;
  // Strict base64url gives every byte string one encoding: equal text is equal bytes.
  return list.devices.some(
    (e) => e.device_id === device.deviceId && e.encryption_key === device.encryptionKey && e.signing_key === device.signingKey,
  );
}

/**
 * The list entry for a verified device (to build the next list).
 * @example
 * const entry = deviceListEntryOf(device, Date.now());
 */
export function deviceListEntryOf(device: VerifiedDevice, addedAt: number): DeviceListEntry {
  if (!isVerifiedDevice(device)) throw new TypeError('device: not a VerifiedDevice (use verifyDevice)');
  assertUint(addedAt, 'addedAt');
  return { device_id: device.deviceId, encryption_key: device.encryptionKey, signing_key: device.signingKey, added_at: addedAt };
}
