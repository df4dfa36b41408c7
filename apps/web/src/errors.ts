// What a person reads when something fails: the SDK's stable error codes in
// plain words, never a stack trace.
import { BilApiError, BilError, BilNetworkError, BilTrustError, WrongPassphraseError } from '@bil/sdk';

const MESSAGES: Record<string, string> = {
  username_taken: 'That username is taken.',
  invalid_username: 'Usernames are 3 to 32 letters, digits, “.”, “_” or “-”, starting with a letter or digit.',
  invalid_password: 'The password must be 10 to 256 characters.',
  invalid_credentials: 'Wrong username or password.',
  user_not_found: 'Nobody has that username.',
  rate_limited: 'Too many attempts: wait a minute and try again.',
  device_revoked: 'This device was revoked.',
  invalid_link: 'That code is not a valid link request or approval (or it is for another device).',
  identity_key_not_held: 'This device does not hold your identity key: approve the link from your first device (or the bil command line).',
  device_list_version: 'Another device changed your device list meanwhile: approve the link again.',
  identity_changed: 'This contact’s safety number changed. Compare it with them before sending.',
  push_unavailable: 'This server doesn’t send notifications.',
  push_endpoint_not_allowed: 'This server doesn’t accept this browser’s push service.',
  group_forked: 'This group’s history forked: nothing is sent to it until you compare the members with the others and accept the current history.',
};

export function describeError(err: unknown): string {
  if (err instanceof WrongPassphraseError) return 'Wrong passphrase.';
  if (err instanceof BilNetworkError) return 'The server does not answer. Check your connection and try again.';
  if (err instanceof BilError) {
    const known = MESSAGES[err.code];
    if (known) return known;
    if (err instanceof BilTrustError) return `Refused for your safety (${err.code}): ${err.message}`;
    if (err instanceof BilApiError && err.status >= 500) return 'The server is having trouble. Try again in a moment.';
    return `${err.message} (${err.code})`;
  }
  if (err instanceof Error) return err.message;
  return 'Something went wrong.';
}
