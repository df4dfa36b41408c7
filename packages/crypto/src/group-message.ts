// Group messages: one AEAD encryption per message under a key derived from
// the epoch key (docs/protocol.md "Group messages"), and the recipient's
// checks that the message belongs to the history this client verified.
import type { Suite } from './aead.js';
import { canonicalBytes } from './canonical-json.js';
import { equalStrings, wipe, type Bytes } from './encoding.js';
import {
  checkSendParams,
  decryptWithKey,
  encryptWithKey,
  ENVELOPE_VERSION,
  parseEnvelope,
  signEnvelope,
  verifyEnvelope,
  type Envelope,
  type HeaderFields,
  type LocalDevice,
  type OpenedMessage,
} from './envelope.js';
import { CannotDecryptError, fail, GroupHistoryError } from './errors.js';
import { assertChain, checkEpochKey, GROUP_PURPOSE, type EpochKey, type GroupChain, type GroupEpoch } from './group.js';
import { hkdfSha256 } from './kdf.js';
import { systemEntropy, type EntropySource } from './random.js';
import type { ReplayGuard } from './replay.js';

/**
 * How long after a later record was created (its signer's clock) a message
 * sent in the epoch it replaced is still accepted (the sender's clock): time
 * for every member's client to learn of the new epoch, plus clock skew.
 */
export const EPOCH_GRACE_MS = 5 * 60_000;

/** Per-message key from the epoch key (RFC 5869 HKDF-SHA256, empty salt). */
async function groupMessageKey(epochKey: EpochKey, messageId: string, senderDeviceId: string): Promise<Bytes> {
  const info = canonicalBytes({
    purpose: GROUP_PURPOSE.groupMessageKey,
    chat_id: epochKey.chatId,
    epoch: epochKey.epoch,
    message_id: messageId,
    sender_device_id: senderDeviceId,
  });
  return hkdfSha256(epochKey.key, new Uint8Array(), info, 32);
}

/**
 * Encrypts a group message under the chain's current epoch: one AEAD
 * encryption with a key derived per message (HKDF, info binding chat, epoch,
 * message id and sender device); no per-member RSA. The sender device must be
 * a member of the current epoch.
 * @example
 * const envelope = await encryptGroupMessage({
 *   sender: me, chain, epochKey, messageId: uuidv7(), counter: 7, timestamp: Date.now(), plaintext: utf8('hi all'),
 * });
 */
export async function encryptGroupMessage(
  params: {
    sender: LocalDevice;
    chain: GroupChain;
    epochKey: EpochKey;
    messageId: string;
    counter: number;
    timestamp: number;
    plaintext: Uint8Array;
    suite?: Suite;
  },
  entropy: EntropySource = systemEntropy,
): Promise<Envelope> {
  const { chain, epochKey, sender } = params;
  assertChain(chain);
  const suite = checkSendParams({ ...params, chatId: chain.chatId });
  if (epochKey?.epoch !== chain.head.epoch) throw new TypeError('epochKey: not the current epoch');
  let e: GroupEpoch;
  try {
    e = checkEpochKey(chain, epochKey);
  } catch {
    throw new TypeError('epochKey: does not belong to this chain');
  }
  if (!chain.head.members.get(sender.userId)?.devices.has(sender.deviceId)) throw new TypeError('sender: not a member of the current epoch');
  const fields: HeaderFields = {
    v: ENVELOPE_VERSION,
    suite,
    chat_id: chain.chatId,
    message_id: params.messageId,
    sender_user_id: sender.userId,
    sender_device_id: sender.deviceId,
    scheme: 'group',
    epoch: epochKey.epoch,
    epoch_hash: e.hash,
    recipient_user_id: '',
    counter: params.counter,
    timestamp: params.timestamp,
  };
  const key = await groupMessageKey(epochKey, params.messageId, sender.deviceId);
  try {
    const { header, ciphertext } = await encryptWithKey(suite, key, params.messageId, fields, params.plaintext, entropy);
    return await signEnvelope(sender, header, ciphertext);
  } finally {
    wipe(key);
  }
}

/**
 * Decrypts a group message: the sender device must be listed in the verified
 * record of the envelope's epoch (so a device the server slipped in, or a
 * member removed earlier, is refused), its signature must verify, and the
 * matching epoch key must be among `epochKeys`. Then key commitment, tag and
 * padding. Any failure is {@link CannotDecryptError}, except two that come
 * after the signature verified, as {@link GroupHistoryError}: a version 2
 * header whose `epoch_hash` is not this chain's record of that epoch
 * (`group_forked`), and a message sent in a replaced epoch later than
 * `graceMs` (default {@link EPOCH_GRACE_MS}) after the record that replaced
 * it was created (`out_of_date_epoch`).
 * @example
 * const { plaintext, header } = await decryptGroupMessage({ envelope, chain, epochKeys: myKeys, replay });
 */
export async function decryptGroupMessage(params: {
  envelope: unknown;
  chain: GroupChain;
  epochKeys: readonly EpochKey[];
  replay?: ReplayGuard;
  graceMs?: number;
}): Promise<OpenedMessage> {
  try {
    const { chain, replay } = params;
    assertChain(chain);
    // Route on the unauthenticated header (parsed once), then verify it.
    const parsed = parseEnvelope(params.envelope);
    const claimed = parsed.envelope.header;
    const e = chain.epochs[claimed.epoch - 1];
    const sender = e?.members.get(claimed.sender_user_id)?.devices.get(claimed.sender_device_id);
    if (!e || !sender) fail();
    const { header, ciphertext } = await verifyEnvelope(parsed, { chatId: chain.chatId, scheme: 'group', sender });
    const at = { epoch: header.epoch, senderUserId: header.sender_user_id, senderDeviceId: header.sender_device_id };
    if (header.v === ENVELOPE_VERSION && !equalStrings(header.epoch_hash!, e.hash)) throw new GroupHistoryError('group_forked', at);
    const next = chain.epochs[header.epoch];
    if (next && header.timestamp > next.record.payload.created_at + (params.graceMs ?? EPOCH_GRACE_MS)) throw new GroupHistoryError('out_of_date_epoch', at);
    if (replay?.isReplay(header)) fail();
    const epochKey = params.epochKeys.find((k) => k?.epoch === header.epoch);
    if (!epochKey || checkEpochKey(chain, epochKey) !== e) fail();
    const key = await groupMessageKey(epochKey, header.message_id, header.sender_device_id);
    try {
      const plaintext = await decryptWithKey(header.suite, key, header.message_id, header, ciphertext);
      replay?.accept(header);
      return { header, plaintext };
    } finally {
      wipe(key);
    }
  } catch (err) {
    if (err instanceof GroupHistoryError) throw err;
    throw new CannotDecryptError();
  }
}
