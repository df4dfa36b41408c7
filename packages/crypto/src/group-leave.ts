// A member's signed leave: the statement an admin's client needs before it
// drops that member from the next epoch. Without it, a server that claims
// "they left" is not believed (docs/protocol.md "Signed leave").
import { canonicalBytes } from './canonical-json.js';
import { deviceMaterial } from './certificate.js';
import { assertUint, equalBytes, equalStrings, fromBase64Url, isUuid, toBase64Url } from './encoding.js';
import type { LocalDevice } from './envelope.js';
import { fail, failClosed } from './errors.js';
import { assertChain, type GroupChain } from './group.js';
import { HASH_LENGTH } from './kdf.js';
import { ED25519_SIGNATURE_LENGTH, ed25519Sign, ed25519Verify } from './signature.js';
import { GROUP_LEAVE_FIELDS, GROUP_LEAVE_TYPE, SIGNED_STATEMENT_FIELDS, hasExactFields } from './signed-fields.js';

export { GROUP_LEAVE_TYPE };

/** Exactly the members of GROUP_LEAVE_FIELDS (signed-fields.ts; signed-fields.unit.spec.ts checks the type). */
export interface GroupLeavePayload {
  readonly type: typeof GROUP_LEAVE_TYPE;
  readonly chat_id: string;
  readonly user_id: string;
  readonly device_id: string;
  /** The newest epoch the leaving device had verified; it must list the device. */
  readonly epoch: number;
  /** That epoch's record hash. */
  readonly epoch_hash: string;
  readonly created_at: number;
}

export interface SignedGroupLeave {
  readonly payload: GroupLeavePayload;
  /** Ed25519 by the leaving device over the canonical payload, base64url. */
  readonly signature: string;
}

/**
 * Signs this device's leave from a group at the chain's head, which must list it.
 * @example
 * const leave = signGroupLeave({ chain, device: me, createdAt: Date.now() });
 * // DELETE /v1/chats/{id}/members/{me} with { leave }
 */
export function signGroupLeave(params: { chain: GroupChain; device: LocalDevice; createdAt: number }): SignedGroupLeave {
  const { chain, device } = params;
  assertChain(chain);
  assertUint(params.createdAt, 'createdAt');
  const listed = chain.head.members.get(device.userId)?.devices.get(device.deviceId);
  if (!listed || !equalBytes(deviceMaterial(listed).signingKey, device.keys.signing.publicKey)) throw new TypeError('device: not listed in the head epoch');
  const payload: GroupLeavePayload = {
    type: GROUP_LEAVE_TYPE,
    chat_id: chain.chatId,
    user_id: device.userId,
    device_id: device.deviceId,
    epoch: chain.head.epoch,
    epoch_hash: chain.head.hash,
    created_at: params.createdAt,
  };
  return { payload, signature: toBase64Url(ed25519Sign(device.keys.signing.secretKey, canonicalBytes(payload as never))) };
}

/**
 * Verifies a leave against a verified chain: the device is listed under the
 * user in the record of `epoch`, whose hash it names, and signed it. Returns
 * the user who left. Any failure is {@link CannotDecryptError}.
 * @example
 * const { userId } = await verifyGroupLeave({ chain, leave });
 */
export async function verifyGroupLeave(params: { chain: GroupChain; leave: unknown }): Promise<{ userId: string; deviceId: string; epoch: number }> {
  return failClosed(async () => {
    const { chain } = params;
    assertChain(chain);
    const l = params.leave as Record<string, unknown> | null;
    if (!hasExactFields(l, SIGNED_STATEMENT_FIELDS)) fail();
    const p = l.payload as GroupLeavePayload;
    if (!hasExactFields(p, GROUP_LEAVE_FIELDS)) fail();
    if (p.type !== GROUP_LEAVE_TYPE || p.chat_id !== chain.chatId || !isUuid(p.user_id) || !isUuid(p.device_id)) fail();
    if (!Number.isSafeInteger(p.created_at) || p.created_at < 0 || !Number.isSafeInteger(p.epoch)) fail();
    const e = chain.epochs[p.epoch - 1];
    if (!e || typeof p.epoch_hash !== 'string' || !equalStrings(p.epoch_hash, e.hash)) fail();
    fromBase64Url(p.epoch_hash, HASH_LENGTH);
    const device = e.members.get(p.user_id)?.devices.get(p.device_id);
    if (!device) fail();
    const signature = fromBase64Url(l.signature as string, ED25519_SIGNATURE_LENGTH);
    if (!ed25519Verify(deviceMaterial(device).signingKey, canonicalBytes(p as never), signature)) fail();
    return { userId: p.user_id, deviceId: p.device_id, epoch: p.epoch };
  });
}
