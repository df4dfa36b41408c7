import { createECDH, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PUSH_ENDPOINT_HOSTS, parsePushHosts, pushHostAllowed, validatePushSubscription } from './push-subscription.js';

const keys = () => ({ p256dh: createECDH('prime256v1').generateKeys().toString('base64url'), auth: randomBytes(16).toString('base64url') });
const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'accepted';
};

describe('push subscription rules', () => {
  it('accept the major push services by default, subdomains only where the list says *.', () => {
    for (const host of ['updates.push.services.mozilla.com', 'fcm.googleapis.com', 'wns2-par02p.notify.windows.com', 'web.push.apple.com']) {
      expect(pushHostAllowed(host, DEFAULT_PUSH_ENDPOINT_HOSTS)).toBe(true);
    }
    for (const host of ['push.services.mozilla.com', 'evil.com', 'fcm.googleapis.com.evil.com', 'xfcm.googleapis.com', '127.0.0.1', 'notify.windows.com']) {
      expect(pushHostAllowed(host, DEFAULT_PUSH_ENDPOINT_HOSTS)).toBe(false);
    }
  });

  it('parse an allow-list and refuse what is not a host', () => {
    expect(parsePushHosts(' Localhost , *.example.com ')).toEqual(['localhost', '*.example.com']);
    expect(() => parsePushHosts('http://x')).toThrow();
    expect(() => parsePushHosts('*')).toThrow();
  });

  it('keep a valid subscription, keys normalised to unpadded base64url', () => {
    const k = keys();
    const s = validatePushSubscription({ endpoint: 'https://fcm.googleapis.com/fcm/send/abc', p256dh: k.p256dh, auth: `${k.auth}==` }, DEFAULT_PUSH_ENDPOINT_HOSTS);
    expect(s).toEqual({ endpoint: 'https://fcm.googleapis.com/fcm/send/abc', p256dh: k.p256dh, auth: k.auth });
  });

  it('refuse a bad endpoint, a host not allowed and bad keys with their own codes', () => {
    const k = keys();
    const hosts = DEFAULT_PUSH_ENDPOINT_HOSTS;
    expect(codeOf(() => validatePushSubscription({ endpoint: 'http://fcm.googleapis.com/x', ...k }, hosts))).toBe('invalid_push_endpoint');
    expect(codeOf(() => validatePushSubscription({ endpoint: 'not a url', ...k }, hosts))).toBe('invalid_push_endpoint');
    expect(codeOf(() => validatePushSubscription({ endpoint: `https://fcm.googleapis.com/${'a'.repeat(2048)}`, ...k }, hosts))).toBe('invalid_push_endpoint');
    expect(codeOf(() => validatePushSubscription({ endpoint: 'https://user:pw@fcm.googleapis.com/x', ...k }, hosts))).toBe('invalid_push_endpoint');
    expect(codeOf(() => validatePushSubscription({ endpoint: 'https://169.254.169.254/latest', ...k }, hosts))).toBe('push_endpoint_not_allowed');
    const ok = 'https://fcm.googleapis.com/x';
    expect(codeOf(() => validatePushSubscription({ endpoint: ok, p256dh: k.p256dh.slice(1), auth: k.auth }, hosts))).toBe('invalid_push_keys');
    expect(codeOf(() => validatePushSubscription({ endpoint: ok, p256dh: k.p256dh, auth: randomBytes(17).toString('base64url') }, hosts))).toBe('invalid_push_keys');
    // 65 bytes that are not a point on P-256.
    expect(codeOf(() => validatePushSubscription({ endpoint: ok, p256dh: Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 1)]).toString('base64url'), auth: k.auth }, hosts))).toBe('invalid_push_keys');
  });
});
