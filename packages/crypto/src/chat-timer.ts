// A personal chat's disappearing-message timer, agreed by its two people: a
// statement signed by the device of whoever set it (docs/protocol.md
// "Disappearing messages"). The server stores it and hands it back with the
// chat; clients show the timer only from a statement that verifies under a
// device certified by that person's pinned identity key, so a server can't
// make them show a timer nobody set. `version` rises across both people: a
// statement replaces another only with a higher version, so a client that
// pinned one notices a server replaying an older one.
// (Groups carry their timer in the signed, encrypted group metadata instead:
// group-metadata.ts.)
import { canonicalBytes } from './canonical-json.js';
import { isVerifiedDevice, type VerifiedDevice } from './certificate.js';
import { assertUint, fromBase64Url, isUuid, toBase64Url } from './encoding.js';
import type { LocalDevice } from './envelope.js';
import { fail, failClosed, failClosedSync } from './errors.js';
import { ED25519_SIGNATURE_LENGTH, ed25519Sign, ed25519Verify } from './signature.js';
import {
  CHAT_TIMER_FIELDS,
  CHAT_TIMER_TYPE,
  MAX_DISAPPEARING_MS,
  MIN_DISAPPEARING_MS,
  SIGNED_STATEMENT_FIELDS,
  hasExactFields,
  isDisappearingMs,
} from './signed-fields.js';

export { CHAT_TIMER_TYPE, MAX_DISAPPEARING_MS, MIN_DISAPPEARING_MS, isDisappearingMs };

/** Exactly the members of CHAT_TIMER_FIELDS (signed-fields.ts; signed-fields.unit.spec.ts checks the type). */
export interface ChatTimerPayload {
  readonly type: typeof CHAT_TIMER_TYPE;
  readonly chat_id: string;
  /** 0 = off, else MIN_DISAPPEARING_MS to MAX_DISAPPEARING_MS. */
  readonly disappearing_ms: number;
  /** Rises with every change, whichever of the two people makes it (the first statement is 1). */
  readonly version: number;
  readonly set_by_user_id: string;
  readonly set_by_device_id: string;
  /** ms since the Unix epoch. */
  readonly created_at: number;
}

export interface SignedChatTimer {
  readonly payload: ChatTimerPayload;
  /** Ed25519 by the setting device over the canonical payload, base64url. */
  readonly signature: string;
}

/**
 * Signs this device's timer statement for a personal chat. `version` must be
 * higher than the statement it replaces (1 for the first).
 * @example
 * const statement = signChatTimer({ chatId, disappearingMs: 86_400_000, version: (current?.version ?? 0) + 1, device: me, createdAt: Date.now() });
 * // PUT /v1/chats/{chatId}/timer with { disappearing_ms, timer_statement: statement }
 */
export function signChatTimer(params: { chatId: string; disappearingMs: number; version: number; device: LocalDevice; createdAt: number }): SignedChatTimer {
  const { chatId, device } = params;
  if (!isUuid(chatId)) throw new TypeError('chatId: expected a UUID');
  if (!isDisappearingMs(params.disappearingMs)) throw new RangeError(`disappearingMs: expected 0 (off) or ${MIN_DISAPPEARING_MS} to ${MAX_DISAPPEARING_MS}`);
  assertUint(params.version, 'version');
  if (params.version < 1) throw new RangeError('version: starts at 1');
  assertUint(params.createdAt, 'createdAt');
  const payload: ChatTimerPayload = {
    type: CHAT_TIMER_TYPE,
    chat_id: chatId,
    disappearing_ms: params.disappearingMs,
    version: params.version,
    set_by_user_id: device.userId,
    set_by_device_id: device.deviceId,
    created_at: params.createdAt,
  };
  return { payload, signature: toBase64Url(ed25519Sign(device.keys.signing.secretKey, canonicalBytes(payload as never))) };
}

/**
 * Checks a statement's shape and returns its payload, without the signature
 * check (the caller reads the user id to find their devices). Any failure is
 * {@link CannotDecryptError}.
 */
export function parseChatTimer(statement: unknown): ChatTimerPayload {
  return failClosedSync(() => {
    const t = statement as Record<string, unknown> | null;
    if (!hasExactFields(t, SIGNED_STATEMENT_FIELDS)) fail();
    const p = t.payload as ChatTimerPayload;
    if (!hasExactFields(p, CHAT_TIMER_FIELDS)) fail();
    if (p.type !== CHAT_TIMER_TYPE || !isUuid(p.chat_id) || !isUuid(p.set_by_user_id) || !isUuid(p.set_by_device_id)) fail();
    if (!isDisappearingMs(p.disappearing_ms)) fail();
    if (!Number.isSafeInteger(p.version) || p.version < 1 || !Number.isSafeInteger(p.created_at) || p.created_at < 0) fail();
    if (typeof t.signature !== 'string') fail();
    fromBase64Url(t.signature, ED25519_SIGNATURE_LENGTH);
    return p;
  });
}

/**
 * Verifies a timer statement for one personal chat: its shape, that it names
 * this chat and one of its two people, and the Ed25519 signature under the
 * named device, which must be among `devices`: that person's devices as
 * {@link verifyDevice} returned them under their pinned identity key (any
 * other object is refused). Any failure is {@link CannotDecryptError}.
 * @example
 * const p = await verifyChatTimer({ statement, chatId, members: [me, peer], devices: await verifiedDevicesOf(parseChatTimer(statement).set_by_user_id) });
 */
export async function verifyChatTimer(params: {
  statement: unknown;
  chatId: string;
  members: readonly [string, string];
  devices: readonly VerifiedDevice[];
}): Promise<ChatTimerPayload> {
  return failClosed(async () => {
    const p = parseChatTimer(params.statement);
    if (p.chat_id !== params.chatId || !params.members.includes(p.set_by_user_id)) fail();
    const device = params.devices.find((d) => d.deviceId === p.set_by_device_id);
    if (!device || !isVerifiedDevice(device) || device.userId !== p.set_by_user_id) fail();
    const signature = fromBase64Url((params.statement as SignedChatTimer).signature, ED25519_SIGNATURE_LENGTH);
    if (!ed25519Verify(fromBase64Url(device.signingKey, 32), canonicalBytes(p as never), signature)) fail();
    return p;
  });
}
