// A member's signed digest consent: "leave my messages out of digests" (or
// withdraw that) for one chat. Signed by one of the member's devices, so a
// server can neither forge an opt-in nor, once a client has seen a newer
// statement, roll it back (clients pin the highest version per chat and
// member). Clients that build a transcript for a digest leave out the
// messages of every member whose newest verified statement says
// `include: false` (docs/protocol.md "Digest consent").
import { canonicalBytes } from './canonical-json.js';
import { assertUint, fromBase64Url, isUuid, toBase64Url } from './encoding.js';
import type { LocalDevice } from './envelope.js';
import { fail, failClosed, failClosedSync } from './errors.js';
import { ED25519_SIGNATURE_LENGTH, ed25519Sign, ed25519Verify } from './signature.js';
import { DIGEST_CONSENT_FIELDS, DIGEST_CONSENT_TYPE, SIGNED_STATEMENT_FIELDS, hasExactFields } from './signed-fields.js';

export { DIGEST_CONSENT_TYPE };

/** Exactly the members of DIGEST_CONSENT_FIELDS (signed-fields.ts; signed-fields.unit.spec.ts checks the type). */
export interface DigestConsentPayload {
  readonly type: typeof DIGEST_CONSENT_TYPE;
  readonly chat_id: string;
  readonly user_id: string;
  /** The device that signed. */
  readonly device_id: string;
  /** False: leave this member's messages out of every digest of the chat. */
  readonly include: boolean;
  /** Strictly increasing per chat and member (clients use their clock in ms); the highest one counts. */
  readonly version: number;
  readonly created_at: number;
}

export interface SignedDigestConsent {
  readonly payload: DigestConsentPayload;
  /** Ed25519 by the device over the canonical payload, base64url. */
  readonly signature: string;
}


/**
 * Signs this device's digest consent for a chat.
 * @example
 * const consent = signDigestConsent({ chatId, device: me, include: false, version: Date.now(), createdAt: Date.now() });
 * // PUT /v1/chats/{id}/digest-consent with { consent }
 */
export function signDigestConsent(params: { chatId: string; device: LocalDevice; include: boolean; version: number; createdAt: number }): SignedDigestConsent {
  const { chatId, device, include } = params;
  if (!isUuid(chatId)) throw new TypeError('chatId: expected a UUID');
  if (typeof include !== 'boolean') throw new TypeError('include: expected a boolean');
  assertUint(params.version, 'version');
  assertUint(params.createdAt, 'createdAt');
  const payload: DigestConsentPayload = {
    type: DIGEST_CONSENT_TYPE,
    chat_id: chatId,
    user_id: device.userId,
    device_id: device.deviceId,
    include,
    version: params.version,
    created_at: params.createdAt,
  };
  return { payload, signature: toBase64Url(ed25519Sign(device.keys.signing.secretKey, canonicalBytes(payload as never))) };
}

/**
 * Checks a statement's shape and returns its payload, without the signature
 * check (a server reads the device id to find the key). Any failure is
 * {@link CannotDecryptError}.
 */
export function parseDigestConsent(consent: unknown): DigestConsentPayload {
  return failClosedSync(() => {
    const c = consent as Record<string, unknown> | null;
    if (!hasExactFields(c, SIGNED_STATEMENT_FIELDS)) fail();
    const p = c.payload as DigestConsentPayload;
    if (!hasExactFields(p, DIGEST_CONSENT_FIELDS)) fail();
    if (p.type !== DIGEST_CONSENT_TYPE || !isUuid(p.chat_id) || !isUuid(p.user_id) || !isUuid(p.device_id)) fail();
    if (typeof p.include !== 'boolean') fail();
    if (!Number.isSafeInteger(p.version) || p.version < 0 || !Number.isSafeInteger(p.created_at) || p.created_at < 0) fail();
    if (typeof c.signature !== 'string') fail();
    fromBase64Url(c.signature, ED25519_SIGNATURE_LENGTH);
    return p;
  });
}

/**
 * Verifies a statement: its shape, the chat (and member, when given) it is
 * for, and the Ed25519 signature by `signingKey`, the signing key of the
 * device it names (the caller has verified that device belongs to the member).
 * Any failure is {@link CannotDecryptError}.
 * @example
 * const p = await verifyDigestConsent({ consent, chatId, signingKey: device.signingKey });
 */
export async function verifyDigestConsent(params: { consent: unknown; chatId: string; userId?: string; signingKey: string | Uint8Array }): Promise<DigestConsentPayload> {
  return failClosed(async () => {
    const p = parseDigestConsent(params.consent);
    if (p.chat_id !== params.chatId || (params.userId !== undefined && p.user_id !== params.userId)) fail();
    const key = typeof params.signingKey === 'string' ? fromBase64Url(params.signingKey, 32) : params.signingKey;
    const signature = fromBase64Url((params.consent as SignedDigestConsent).signature, ED25519_SIGNATURE_LENGTH);
    if (!ed25519Verify(key, canonicalBytes(p as never), signature)) fail();
    return p;
  });
}
