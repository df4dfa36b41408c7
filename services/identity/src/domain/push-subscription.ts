// Input rules of Web Push subscriptions (docs/push.md). A subscription is a
// capability URL on a push service plus the browser's RFC 8291 keys. The
// delivery service POSTs to the URL, so the host must be one the operator
// allows (PUSH_ENDPOINT_HOSTS): otherwise a client could make delivery send
// requests anywhere (server-side request forgery).
import { createPublicKey } from 'node:crypto';
import { MAX_PUSH_ENDPOINT_CHARS, PUSH_AUTH_BYTES, PUSH_P256DH_BYTES } from '@bil/proto/limits';
import { invalidArgument } from '@bil/runtime/domain';

/** The major browsers' push services: Firefox, Chrome/Edge (FCM), Windows (WNS), Safari. */
export const DEFAULT_PUSH_ENDPOINT_HOSTS = ['*.push.services.mozilla.com', 'fcm.googleapis.com', '*.notify.windows.com', 'web.push.apple.com'];

const HOST_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** Parses a comma-separated allow-list: host names, or `*.` + a domain for any of its subdomains. */
export function parsePushHosts(raw: string): string[] {
  const hosts = raw
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
  for (const h of hosts) if (!HOST_PATTERN.test(h)) throw new Error(`"${h}" is not a host name or *.domain`);
  return hosts;
}

/** Whether `host` (lower case, no port) is on the allow-list. `*.example.com` matches a.example.com, not example.com. */
export function pushHostAllowed(host: string, allowed: readonly string[]): boolean {
  return allowed.some((p) => (p.startsWith('*.') ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : host === p));
}

export interface PushSubscriptionInput {
  endpoint: string;
  p256dh: string;
  auth: string;
}

/** Checks a subscription: an https endpoint ≤ 2 KiB on an allowed host, a P-256 point and a 16-byte secret. */
export function validatePushSubscription(raw: { endpoint?: unknown; p256dh?: unknown; auth?: unknown }, allowedHosts: readonly string[]): PushSubscriptionInput {
  const endpoint = validateEndpoint(raw.endpoint, allowedHosts);
  const p256dh = keyBytes(raw.p256dh, 'p256dh', PUSH_P256DH_BYTES);
  const auth = keyBytes(raw.auth, 'auth', PUSH_AUTH_BYTES);
  if (p256dh[0] !== 0x04 || !onCurve(p256dh)) throw invalidArgument('invalid_push_keys', 'p256dh must be an uncompressed P-256 public key', { field: 'p256dh' });
  return { endpoint, p256dh: p256dh.toString('base64url'), auth: auth.toString('base64url') };
}

function validateEndpoint(raw: unknown, allowedHosts: readonly string[]): string {
  const bad = (why: string) => invalidArgument('invalid_push_endpoint', `endpoint ${why}`, { field: 'endpoint' });
  if (typeof raw !== 'string' || raw.length === 0) throw bad('must be a URL');
  if (raw.length > MAX_PUSH_ENDPOINT_CHARS) throw bad(`must be at most ${MAX_PUSH_ENDPOINT_CHARS} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad('must be a URL');
  }
  if (url.protocol !== 'https:') throw bad('must be an https URL');
  if (url.username || url.password) throw bad('must not carry credentials');
  if (!pushHostAllowed(url.hostname.toLowerCase(), allowedHosts)) {
    throw invalidArgument('push_endpoint_not_allowed', `push service host ${url.hostname} is not allowed here (PUSH_ENDPOINT_HOSTS)`, { field: 'endpoint' });
  }
  return url.href;
}

function keyBytes(raw: unknown, field: string, bytes: number): Buffer {
  const chars = Math.ceil((bytes * 4) / 3);
  // Browsers give base64url; some add padding: accepted and dropped.
  const text = typeof raw === 'string' ? raw.replace(/=+$/, '') : '';
  if (text.length !== chars || !/^[A-Za-z0-9_-]+$/.test(text)) {
    throw invalidArgument('invalid_push_keys', `${field} must be ${bytes} bytes in base64url`, { field });
  }
  return Buffer.from(text, 'base64url');
}

function onCurve(point: Buffer): boolean {
  try {
    const x = point.subarray(1, 33).toString('base64url');
    const y = point.subarray(33, 65).toString('base64url');
    createPublicKey({ key: { kty: 'EC', crv: 'P-256', x, y }, format: 'jwk' });
    return true;
  } catch {
    return false;
  }
}
