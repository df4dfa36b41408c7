// Every failure the SDK reports is one of these classes, so callers branch on
// `instanceof` and on the API's stable `code`, never on message text.

/** Common base of every SDK error. */
export abstract class BilError extends Error {
  abstract readonly code: string;
}

/**
 * The server answered with an error (docs/api.md "Errors"). `code` is the
 * API's stable code (`username_taken`, `invalid_credentials`, ...); `details`
 * holds its code-specific fields (e.g. `retry_after_seconds` for `rate_limited`).
 * @example
 * try { await client.register({ username, password }); }
 * catch (e) { if (e instanceof BilApiError && e.code === 'username_taken') askForAnotherName(); }
 */
export class BilApiError extends BilError {
  readonly status: number;
  readonly code: string;
  readonly details: Record<string, unknown>;
  /** The `X-Correlation-Id` of the failed request: it finds the call in server logs. */
  readonly correlationId: string | undefined;
  /** The answer's Retry-After in ms (503 `service_unavailable`, 429 `rate_limited`), if it had one. */
  readonly retryAfterMs: number | undefined;

  constructor(init: { status: number; code: string; message: string; details?: Record<string, unknown>; correlationId?: string; retryAfterMs?: number }) {
    super(init.message);
    this.name = 'BilApiError';
    this.status = init.status;
    this.code = init.code;
    this.details = init.details ?? {};
    this.correlationId = init.correlationId;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/**
 * The session is over and refreshing can't revive it: the refresh token was
 * reused (`refresh_token_reused`), unknown (`invalid_refresh_token`) or past
 * its lifetime (`session_expired`), or the server revoked the session, device
 * or account (`token_revoked`, `account_deleted`). The client has dropped its
 * tokens; sign in again with `login` (the device keys stay in the key store).
 */
export class SessionEndedError extends BilApiError {
  constructor(init: ConstructorParameters<typeof BilApiError>[0]) {
    super(init);
    this.name = 'SessionEndedError';
  }
}

/** The request never got an HTTP answer: DNS, connection, TLS, abort or timeout. */
export class BilNetworkError extends BilError {
  readonly code: 'network' | 'timeout';

  constructor(message: string, options: { code?: 'network' | 'timeout'; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'BilNetworkError';
    this.code = options.code ?? 'network';
  }
}

/** Why a call can't run in the client's current state. */
export type BilStateCode =
  | 'no_profile'
  | 'profile_exists'
  | 'not_signed_in'
  | 'identity_key_not_held'
  | 'no_pending_link'
  | 'invalid_link'
  | 'username_mismatch'
  | 'no_pinned_identity'
  | 'identity_changed'
  | 'not_in_epoch'
  | 'not_an_admin'
  | 'user_id_required'
  | 'not_a_group'
  | 'digest_key_not_configured'
  | 'digest_key_untrusted'
  | 'digest_result_untrusted'
  | 'digest_disclosure_required'
  | 'digest_disclosure_declined'
  | 'unknown_message'
  | 'not_own_message'
  | 'not_editable';

/**
 * The call does not fit the client's state (no profile yet, signed out, this
 * device doesn't hold the identity key, a link approval that doesn't open,
 * ...). Nothing was sent to the server, or the server's answer was refused.
 */
export class BilStateError extends BilError {
  readonly code: BilStateCode;

  constructor(code: BilStateCode, message: string) {
    super(message);
    this.name = 'BilStateError';
    this.code = code;
  }
}

/** Why a trust check refused what the server sent or asked for (docs/sdk.md "Trust errors"). */
export type BilTrustCode =
  | 'identity_changed'
  | 'server_change_unverified'
  | 'group_forked'
  | 'chat_id_mismatch'
  | 'device_list_rollback'
  | 'device_list_invalid'
  | 'rotation_pending';

/**
 * A security check refused something: the server asked for a change this
 * client can't verify from signed data (a member dropped or promoted, a
 * device put back), served a forked group history, a personal chat that is
 * not the two people's, or an older device list; or a member's identity key
 * is not the pinned one. Nothing was sent. `details` names what was refused
 * (`chat_id`, `user_id`, `epoch`, `what`), for the app to show.
 * @example
 * try { await client.messages.send(chatId, text); }
 * catch (e) { if (e instanceof BilTrustError && e.code === 'identity_changed') showSafetyNumberChanged(e.details.user_id); }
 */
export class BilTrustError extends BilError {
  readonly code: BilTrustCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: BilTrustCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'BilTrustError';
    this.code = code;
    this.details = details;
  }
}

/**
 * The server's answer does not have the documented shape (a list that is
 * null, a missing field, paging that never ends): the call is abandoned
 * rather than acting on it.
 */
export class BilProtocolError extends BilError {
  readonly code = 'protocol_error' as const;

  constructor(message: string) {
    super(`protocol error: ${message}`);
    this.name = 'BilProtocolError';
  }
}

/** A key store could not be decrypted with the passphrase given (or was altered). */
export class WrongPassphraseError extends BilError {
  readonly code = 'wrong_passphrase' as const;

  constructor() {
    super('wrong passphrase, or the key store was altered');
    this.name = 'WrongPassphraseError';
  }
}

/** A key store's contents are not a profile this SDK can read. */
export class KeyStoreFormatError extends BilError {
  readonly code = 'key_store_format' as const;

  constructor(message: string) {
    super(`key store: ${message}`);
    this.name = 'KeyStoreFormatError';
  }
}
