// The payload web-push encrypts opens with RFC 8291 decryption written from the
// RFC (testkit decryptWebPush), and holds nothing but the count.
import { createECDH, randomBytes } from 'node:crypto';
import webpush from 'web-push';
import { describe, expect, it } from 'vitest';
import { decryptWebPush } from '@bil/testkit';
import { pushPayload } from '../../app/push/sender.js';
import { PUSH_TOPIC } from './web-push-sender.js';

describe('Web Push payload', () => {
  it('is {"type":"bil.push.v1","chats":N} encrypted to the subscription (aes128gcm), with TTL and Topic', () => {
    const browser = createECDH('prime256v1');
    browser.generateKeys();
    const auth = randomBytes(16);
    const vapid = webpush.generateVAPIDKeys();
    const details = webpush.generateRequestDetails(
      { endpoint: 'https://fcm.googleapis.com/fcm/send/x', keys: { p256dh: browser.getPublicKey('base64url'), auth: auth.toString('base64url') } },
      pushPayload({ chats: 3 }),
      { vapidDetails: { subject: 'mailto:ops@example.com', ...vapid }, TTL: 60, topic: PUSH_TOPIC, contentEncoding: 'aes128gcm' },
    );
    expect(details.headers['Content-Encoding']).toBe('aes128gcm');
    expect(details.headers.TTL).toBe(60);
    expect(details.headers.Topic).toBe(PUSH_TOPIC);
    const plaintext = decryptWebPush(Buffer.from(details.body as Buffer), browser, auth).toString('utf8');
    expect(plaintext).toBe('{"type":"bil.push.v1","chats":3}');
    // Another device's keys cannot open it.
    const other = createECDH('prime256v1');
    other.generateKeys();
    expect(() => decryptWebPush(Buffer.from(details.body as Buffer), other, auth)).toThrow();
  });
});
