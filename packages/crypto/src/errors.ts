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
