// Exit codes and the one place every failure becomes a message, a stable
// code and an exit code (docs/cli.md "Exit codes"). No stack traces unless
// BIL_DEBUG=1: a user needs the reason and what to do, a script needs the code.
import {
  BilApiError,
  BilError,
  BilNetworkError,
  BilProtocolError,
  BilStateError,
  BilTrustError,
  DigestFailedError,
  KeyStoreFormatError,
  SessionEndedError,
  WrongPassphraseError,
} from '@bil/sdk';

export const ExitCode = {
  ok: 0,
  /** Anything not listed below: the server refused the request (its code is printed), a digest failed, a timeout. */
  error: 1,
  /** Bad or missing arguments, no passphrase or password without a terminal, an ambiguous chat reference. */
  usage: 2,
  /** No profile, not signed in, session ended, wrong account password, device revoked. */
  auth: 3,
  /** No such user, chat, device or member. */
  notFound: 4,
  /** The passphrase does not open the profile's key store (or the file was altered). */
  wrongPassphrase: 5,
  /** No answer from the server (connection refused, DNS, timeout) or it is unavailable (503, 504). */
  unreachable: 6,
  /** A trust check failed: safety numbers differ, a contact's identity key changed, an untrusted digest key, a refused device list or group change (BilTrustError). */
  trust: 7,
  /** Another bil process is using this profile. */
  busy: 8,
  /** Ctrl-C at a prompt. */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the CLI itself detects, with the code and exit code to report. */
export class CliError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: ExitCode = ExitCode.error,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usage = (message: string, hint?: string) => new CliError('usage', message, ExitCode.usage, hint);

/** What is reported for a failure. */
export interface Failure {
  readonly exitCode: ExitCode;
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
}

const AUTH_CODES = new Set([
  'invalid_credentials',
  'device_revoked',
  'token_revoked',
  'missing_token',
  'invalid_token',
  'token_expired',
  'account_deleted',
  'invalid_refresh_token',
  'refresh_token_reused',
  'session_expired',
]);

function networkReason(err: BilNetworkError): string {
  if (err.code === 'timeout') return 'no answer in time';
  let cause: unknown = err.cause;
  let message = '';
  for (let i = 0; i < 4 && cause instanceof Error; i++) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('E')) return code;
    message = cause.message;
    cause = cause.cause;
  }
  return message && message !== 'fetch failed' ? message : 'connection failed';
}

/** Maps any error to what the user sees and the exit code. `url` names the server in network errors. */
export function describeFailure(err: unknown, url: string): Failure {
  if (err instanceof CliError) return { exitCode: err.exitCode, code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  if (err instanceof WrongPassphraseError) {
    return {
      exitCode: ExitCode.wrongPassphrase,
      code: err.code,
      message: 'wrong passphrase: it does not open this profile (or the key store file was altered)',
      hint: 'check BIL_PASSPHRASE, or type it again',
    };
  }
  if (err instanceof KeyStoreFormatError) return { exitCode: ExitCode.error, code: err.code, message: `the profile's key store is unreadable: ${err.message}` };
  if (err instanceof BilNetworkError) {
    return {
      exitCode: ExitCode.unreachable,
      code: err.code,
      message: `cannot reach the server at ${url} (${networkReason(err)})`,
      hint: 'is it running? Set the address with --url or BIL_URL',
    };
  }
  if (err instanceof SessionEndedError) {
    return { exitCode: ExitCode.auth, code: err.code, message: `the session has ended: ${err.message}`, hint: 'sign in again: bil login' };
  }
  if (err instanceof BilApiError) {
    const base = { code: err.code, message: err.message || `the server answered ${err.status}` };
    if (err.status === 503 || err.status === 504) return { ...base, exitCode: ExitCode.unreachable, hint: 'the server is up but a backend is not; try again shortly' };
    if (AUTH_CODES.has(err.code) || err.status === 401) {
      const hint = err.code === 'invalid_credentials' ? 'check the username and password (BIL_PASSWORD)' : 'sign in again: bil login';
      return { ...base, exitCode: ExitCode.auth, hint };
    }
    if (err.status === 404) return { ...base, exitCode: ExitCode.notFound };
    if (err.code === 'rate_limited') {
      const s = err.details.retry_after_seconds;
      return { ...base, exitCode: ExitCode.error, hint: typeof s === 'number' ? `try again in ${s} s` : 'try again later' };
    }
    return { ...base, exitCode: ExitCode.error };
  }
  if (err instanceof BilTrustError) return trustFailure(err);
  if (err instanceof BilProtocolError) {
    return { exitCode: ExitCode.error, code: err.code, message: `the server's answer was malformed (${err.message.replace(/^protocol error: /, '')}); nothing was done with it` };
  }
  if (err instanceof BilStateError) {
    switch (err.code) {
      case 'no_profile':
        return { exitCode: ExitCode.auth, code: err.code, message: err.message, hint: 'create one: bil register <username>, or bil device link' };
      case 'not_signed_in':
        return { exitCode: ExitCode.auth, code: err.code, message: 'not signed in', hint: 'bil login' };
      case 'username_mismatch':
        return { exitCode: ExitCode.auth, code: err.code, message: err.message };
      case 'identity_changed':
        return { exitCode: ExitCode.trust, code: err.code, message: err.message, hint: 'compare safety numbers (bil contacts verify <user>), then bil contacts accept <user>' };
      case 'digest_key_untrusted':
        return {
          exitCode: ExitCode.trust,
          code: err.code,
          message: `${err.message}; nothing was sent`,
          hint: 'bil digest key show: if the operator really changed the key, compare the new fingerprint with theirs, then bil digest key set <key>',
        };
      case 'digest_result_untrusted':
        return { exitCode: ExitCode.trust, code: err.code, message: `${err.message}; it is not shown` };
      case 'digest_key_not_configured':
        return {
          exitCode: ExitCode.usage,
          code: err.code,
          message: 'no digest service key is configured for this server',
          hint: 'bil digest key set <key> (the operator publishes it; npm start prints it), BIL_DIGEST_SERVICE_KEY or --digest-key; or bil digest --on-device',
        };
      case 'digest_disclosure_declined':
        return { exitCode: ExitCode.error, code: err.code, message: 'you said no: nothing was sent' };
      case 'digest_disclosure_required':
        return { exitCode: ExitCode.usage, code: err.code, message: 'a server or model digest needs your yes first: it sends the chat\'s messages off this machine', hint: 'answer on a terminal, or add --yes' };
      case 'not_an_admin':
        return { exitCode: ExitCode.error, code: err.code, message: 'only an admin of the group may do this', hint: 'ask an admin (bil chat members <chat> shows who is)' };
      case 'not_in_epoch':
        return {
          exitCode: ExitCode.error,
          code: err.code,
          message: 'this device is not in the group\'s current key epoch yet (it was linked after the key was made)',
          hint: 'an admin rotates the key: bil chat rotate <chat> (an admin\'s other device does it on its next send)',
        };
      case 'invalid_link':
        return { exitCode: ExitCode.usage, code: err.code, message: 'the link request or approval is malformed, altered or for another device' };
      case 'unknown_message':
        return { exitCode: ExitCode.notFound, code: err.code, message: err.message, hint: 'bil history <chat> shows the messages and their numbers' };
      case 'not_own_message':
        return { exitCode: ExitCode.error, code: err.code, message: 'you can only edit your own messages' };
      default:
        return { exitCode: ExitCode.error, code: err.code, message: err.message };
    }
  }
  if (err instanceof DigestFailedError) {
    const requestId = (err as DigestFailedError & { requestId?: unknown }).requestId;
    return { exitCode: ExitCode.error, code: 'digest_failed', message: `the digest failed: ${err.reason}${typeof requestId === 'string' ? ` (request ${requestId})` : ''}` };
  }
  if (err instanceof BilError) return { exitCode: ExitCode.error, code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { exitCode: ExitCode.error, code: 'internal', message: `unexpected error: ${message}`, hint: 'run with BIL_DEBUG=1 for details' };
}

/** A trust check refused what the server sent or asked for: exit 7 with what it means for the person. */
function trustFailure(err: BilTrustError): Failure {
  const base = { exitCode: ExitCode.trust, code: err.code };
  const chat = typeof err.details.chat_id === 'string' ? err.details.chat_id : '';
  const who = typeof err.details.user_id === 'string' ? ` (user ${err.details.user_id})` : '';
  switch (err.code) {
    case 'identity_changed':
      return { ...base, message: err.message, hint: 'compare safety numbers (bil contacts verify <user>), then bil contacts accept <user>' };
    case 'server_change_unverified':
      return {
        ...base,
        message: `refused: the server asked for a change to the group that no member signed (${err.message.replace(/^refused to sign the next epoch: /, '')}); nothing was signed or sent`,
        hint: 'check the members with the others (bil chat members <chat>); if someone really left or was removed, an admin removes them: bil chat remove <chat> <user>',
      };
    case 'group_forked':
      return {
        ...base,
        message: `the server showed different histories of this group to its members (${err.message}); nothing was sent`,
        hint: `compare the member list with the others (bil chat members ${chat.slice(0, 8)}), then bil chat resolve-fork ${chat.slice(0, 8)}`,
      };
    case 'chat_id_mismatch':
      return { ...base, message: `refused: the server's personal chat is not the chat with that person (${err.message})` };
    case 'device_list_rollback':
      return {
        ...base,
        message: `the server showed an older list of someone's devices than this device already saw${who}: it may be trying to bring back a removed device`,
        hint: 'nothing was sent; try again later, and tell the person if it persists',
      };
    case 'device_list_invalid':
      return {
        ...base,
        message: `someone's device list is not signed by the identity key you trust${who}: it was altered`,
        hint: 'nothing was sent; compare safety numbers with them (bil contacts verify <user>)',
      };
    case 'rotation_pending':
      return { ...base, message: 'a member of this group revoked a device or closed their account: an admin must change the group key before anyone sends', hint: 'an admin runs: bil chat rotate <chat>' };
    default:
      return { ...base, message: err.message };
  }
}
