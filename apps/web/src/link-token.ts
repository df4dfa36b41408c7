// Link requests and approvals as the CLI writes them (apps/cli/src/link-token.ts):
// one line of base64url JSON behind a prefix, so the two interoperate.
export const REQUEST_PREFIX = 'bil-link-request:';
export const APPROVAL_PREFIX = 'bil-link-approval:';

export function encodeToken(prefix: string, value: unknown): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return prefix + btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The JSON text of a token (or JSON pasted as is), for the SDK to check. */
export function decodeToken(prefix: string, text: string): string {
  const t = text.trim();
  if (t.startsWith('{')) return t;
  const body = t.startsWith(prefix) ? t.slice(prefix.length) : t;
  if (!/^[A-Za-z0-9_-]+$/.test(body)) throw new Error(`That is not a code starting with ${prefix}`);
  const bin = atob(body.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}
