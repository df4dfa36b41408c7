// Linking a second device (docs/sdk.md "Linking", docs/protocol.md "Linking a
// device"). The new device shows a link request (its public keys and a fresh
// secret, e.g. as a QR code); a device holding the account identity key
// certifies those keys and answers with a link approval sealed to the new
// device's RSA key. The approval carries the certificate, the id the new
// device registers under and the account's next signed device list naming it,
// and, only if the approver opts in, the identity private key (then the new
// device can approve links and sign lists too; see docs/sdk.md for the risk).
// The secret, which only the scanner of the request saw, authenticates the
// approval, so it may travel over any channel.
import {
  canonicalBytes,
  equalBytes,
  fromBase64Url,
  fromUtf8,
  identityKeyFromSeed,
  importEncryptionPublicKey,
  isUuid,
  linkDevice,
  openSealedPayload,
  parseSigningKey,
  randomBytes,
  sealKeyId,
  sealPayload,
  sealRecipientForDevice,
  toBase64Url,
  verifyDevice,
  verifyDeviceCertificate,
  verifyDeviceList,
  type DeviceKeyPair,
  type SignedDeviceList,
  type Ed25519KeyPair,
  type SealedBox,
} from '@bil/crypto';
import { BilStateError } from './errors.js';

export const LINK_REQUEST_TYPE = 'bil.link-request.v1';
export const LINK_APPROVAL_TYPE = 'bil.link-approval.v1';
/** `kind` of the sealed box inside an approval (docs/protocol.md "Sealed payloads"). */
export const LINK_APPROVAL_KIND = 'link-approval';
const LINK_GRANT_TYPE = 'bil.link-grant.v1';

/** What the new device shows the approving device (e.g. as a QR code). Not secret from the user, but keep it off the server. */
export interface LinkRequest {
  readonly type: typeof LINK_REQUEST_TYPE;
  /** Random UUID naming this link attempt; the sealed approval's `context`. */
  readonly link_id: string;
  /** 32 random bytes, base64url; proves the approval came from whoever read this request. */
  readonly secret: string;
  readonly device_name: string;
  /** The new device's RSA SPKI, base64url. */
  readonly encryption_key: string;
  /** The new device's Ed25519 public key, base64url. */
  readonly signing_key: string;
}

/** The approving device's answer; safe to send over an untrusted channel. */
export interface LinkApproval {
  readonly type: typeof LINK_APPROVAL_TYPE;
  readonly link_id: string;
  readonly sealed: SealedBox;
}

/** The sealed contents of an approval. */
export interface LinkGrant {
  readonly type: typeof LINK_GRANT_TYPE;
  readonly secret: string;
  readonly user_id: string;
  readonly username: string;
  readonly identity_key: string;
  readonly certificate: string;
  readonly issued_at: number;
  /** The identity private key (Ed25519 seed, base64url), or "" if the approver kept it. */
  readonly identity_seed: string;
  /** The device id the new device registers under (named by `device_list`). Absent in approvals from before signed device lists. */
  readonly device_id?: string;
  /** The account's next signed device list, naming the new device with its keys; the new device registers with it. */
  readonly device_list?: SignedDeviceList;
  /** The approving device (it holds the identity key). */
  readonly approver_device_id?: string;
}

const GRANT_KEYS_V1 = 'certificate,identity_key,identity_seed,issued_at,secret,type,user_id,username';
const GRANT_KEYS = 'approver_device_id,certificate,device_id,device_list,identity_key,identity_seed,issued_at,secret,type,user_id,username';

const invalid = (): never => {
  throw new BilStateError('invalid_link', 'link request or approval is malformed, altered or not for this device');
};

function asObject(value: unknown): Record<string, unknown> {
  let v = value;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      invalid();
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalid();
  return v as Record<string, unknown>;
}

function sameKeys(obj: Record<string, unknown>, keys: string): void {
  if (Object.keys(obj).sort().join() !== keys) invalid();
}

/** A new link request for freshly generated device keys. */
export function createLinkRequest(keys: DeviceKeyPair, deviceName: string): LinkRequest {
  return {
    type: LINK_REQUEST_TYPE,
    link_id: globalThis.crypto.randomUUID(),
    secret: toBase64Url(randomBytes(32)),
    device_name: deviceName,
    encryption_key: toBase64Url(keys.encryption.spki),
    signing_key: toBase64Url(keys.signing.publicKey),
  };
}

/** Checks a scanned link request (object or its JSON text), including the protocol's key rules. */
export async function parseLinkRequest(value: unknown): Promise<LinkRequest> {
  const r = asObject(value);
  sameKeys(r, 'device_name,encryption_key,link_id,secret,signing_key,type');
  if (r.type !== LINK_REQUEST_TYPE || !isUuid(r.link_id) || typeof r.device_name !== 'string' || r.device_name.length > 64) invalid();
  try {
    fromBase64Url(r.secret as string, 32);
    parseSigningKey(r.signing_key as string);
    await importEncryptionPublicKey(r.encryption_key as string);
  } catch {
    invalid();
  }
  return r as unknown as LinkRequest;
}

/**
 * The approving side: certifies the request's keys with the identity key and
 * seals the certificate (and the identity key, if shared) to the new device.
 */
export async function sealLinkApproval(p: {
  request: LinkRequest;
  identity: Ed25519KeyPair;
  userId: string;
  username: string;
  shareIdentityKey: boolean;
  /** The id the new device will register under, and the next list that names it. */
  deviceId: string;
  deviceList: SignedDeviceList;
  approverDeviceId: string;
  now: number;
}): Promise<LinkApproval> {
  const { request, identity, userId } = p;
  const cert = linkDevice({
    identity,
    userId,
    newDevice: { encryption_key: request.encryption_key, signing_key: request.signing_key },
    issuedAt: p.now,
  });
  // The new device has no id yet; the record's device id is only a placeholder
  // so that verifyDevice (the one way to get a seal recipient) can check the keys.
  const recipient = await sealRecipientForDevice(await verifyDevice({ ...cert, device_id: request.link_id }, identity.publicKey));
  const grant: LinkGrant = {
    type: LINK_GRANT_TYPE,
    secret: request.secret,
    user_id: userId,
    username: p.username,
    identity_key: cert.identity_key,
    certificate: cert.certificate,
    issued_at: cert.issued_at,
    identity_seed: p.shareIdentityKey ? toBase64Url(identity.secretKey) : '',
    device_id: p.deviceId,
    device_list: p.deviceList,
    approver_device_id: p.approverDeviceId,
  };
  const plaintext = canonicalBytes({ ...grant } as never);
  try {
    const sealed = await sealPayload({ to: recipient, kind: LINK_APPROVAL_KIND, context: request.link_id, createdAt: p.now, plaintext });
    return { type: LINK_APPROVAL_TYPE, link_id: request.link_id, sealed };
  } finally {
    plaintext.fill(0);
  }
}

/**
 * The new device: opens an approval for its pending request and checks that
 * the secret is its own, the certificate covers exactly its keys, and a shared
 * identity key matches the certified identity public key.
 */
export async function openLinkApproval(p: { approval: unknown; request: LinkRequest; keys: DeviceKeyPair }): Promise<LinkGrant> {
  const a = asObject(p.approval);
  sameKeys(a, 'link_id,sealed,type');
  if (a.type !== LINK_APPROVAL_TYPE || a.link_id !== p.request.link_id) invalid();
  let grant: LinkGrant;
  try {
    const { plaintext } = await openSealedPayload(a.sealed, {
      privateKey: p.keys.encryption.privateKey,
      keyId: await sealKeyId(p.keys.encryption.spki),
      kind: LINK_APPROVAL_KIND,
      context: p.request.link_id,
    });
    grant = JSON.parse(fromUtf8(plaintext)) as LinkGrant;
    plaintext.fill(0);
  } catch {
    return invalid();
  }
  const g = asObject(grant);
  const keys = Object.keys(g).sort().join();
  if (keys !== GRANT_KEYS && keys !== GRANT_KEYS_V1) invalid();
  if (g.type !== LINK_GRANT_TYPE || typeof g.username !== 'string' || typeof g.identity_seed !== 'string') invalid();
  try {
    if (!equalBytes(fromBase64Url(grant.secret, 32), fromBase64Url(p.request.secret, 32))) invalid();
    verifyDeviceCertificate({
      user_id: grant.user_id,
      identity_key: grant.identity_key,
      encryption_key: p.request.encryption_key,
      signing_key: p.request.signing_key,
      issued_at: grant.issued_at,
      certificate: grant.certificate,
    });
    if (grant.identity_seed !== '') {
      const identity = identityKeyFromSeed(fromBase64Url(grant.identity_seed, 32));
      if (!equalBytes(identity.publicKey, fromBase64Url(grant.identity_key, 32))) invalid();
    }
    if (keys === GRANT_KEYS) {
      // The list must be the account's, signed by the identity key, and name this device with exactly its keys.
      if (!isUuid(grant.device_id) || !isUuid(grant.approver_device_id)) invalid();
      const list = await verifyDeviceList(grant.device_list, grant.identity_key, { userId: grant.user_id });
      const me = list.devices.find((d) => d.device_id === grant.device_id);
      if (!me || me.encryption_key !== p.request.encryption_key || me.signing_key !== p.request.signing_key) invalid();
    }
  } catch {
    return invalid();
  }
  return grant;
}
