// Link requests and approvals travel between two terminals by copy and paste
// (or a script): one line of base64url JSON behind a prefix, so no shell
// quoting is needed. Plain JSON is accepted too.
import { CliError, ExitCode } from './errors.js';

export const REQUEST_PREFIX = 'bil-link-request:';
export const APPROVAL_PREFIX = 'bil-link-approval:';

export function encodeLinkToken(prefix: string, value: unknown): string {
  return prefix + Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** The JSON text of a token (or of JSON given as is), for the SDK to check. */
export function decodeLinkToken(prefix: string, text: string, what: string): string {
  const t = text.trim();
  if (t.startsWith('{')) return t;
  const body = t.startsWith(prefix) ? t.slice(prefix.length) : t;
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new CliError('invalid_link', `that is not a ${what} (expected ${prefix}…)`, ExitCode.usage);
  const json = Buffer.from(body, 'base64url').toString('utf8');
  if (!json.startsWith('{')) throw new CliError('invalid_link', `that is not a ${what} (expected ${prefix}…)`, ExitCode.usage);
  return json;
}
