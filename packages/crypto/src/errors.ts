/**
 * The single failure every decryption and verification path reports.
 *
 * A bad tag, signature, commitment, label, key size, replay or truncated input
 * all throw this same error with the same message and no `cause`: a caller (or
 * an attacker watching a caller) must not be able to tell which check failed,
 * or the failure becomes an oracle (Manger 2001 against RSA-OAEP, Vaudenay 2002
 * against padding).
 * @example
 * try { await decryptDirectMessage(params); } catch (e) { if (e instanceof CannotDecryptError) showUndecryptable(); }
 */
export class CannotDecryptError extends Error {
  readonly code = 'cannot_decrypt' as const;

  constructor() {
    super('cannot decrypt');
    this.name = 'CannotDecryptError';
  }
}

/** Throws the uniform error. */
export function fail(): never {
  throw new CannotDecryptError();
}

/**
 * Runs `fn`, turning any failure into the uniform error so that parser, WebCrypto
 * and noble exceptions (whose messages differ) never reach the caller.
 */
export async function failClosed<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch {
    throw new CannotDecryptError();
  }
}

/** Synchronous {@link failClosed}. */
export function failClosedSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch {
    throw new CannotDecryptError();
  }
}

/**
 * A group message whose sender signature verified but which doesn't fit this
 * client's verified history: the signed header names another record for its
 * epoch (`group_forked`: the sender was shown a different chain), or it was
 * sent in an epoch that a later record had replaced longer ago than the grace
 * allows (`out_of_date_epoch`: the sender's client is out of date, e.g. a
 * server kept a removal from it). Raised only after the signature checked
 * out, so it tells nothing about keys or plaintext (docs/protocol.md
 * "Epoch freshness and forks").
 */
export class GroupHistoryError extends Error {
  readonly code: 'group_forked' | 'out_of_date_epoch';
  readonly epoch: number;
  readonly senderUserId: string;
  readonly senderDeviceId: string;

  constructor(code: 'group_forked' | 'out_of_date_epoch', at: { epoch: number; senderUserId: string; senderDeviceId: string }) {
    super(code === 'group_forked' ? 'the sender used another record for this epoch' : 'sent in an epoch that had been replaced');
    this.name = 'GroupHistoryError';
    this.code = code;
    this.epoch = at.epoch;
    this.senderUserId = at.senderUserId;
    this.senderDeviceId = at.senderDeviceId;
  }
}
