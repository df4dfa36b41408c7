// Service tokens: what a valid one is, and every way a forged, stale or
// misdirected one is refused.
import { describe, expect, it } from 'vitest';
import { ConfigError, DEVELOPMENT_SERVICE_AUTH_SECRET, SERVICE_TOKEN_TTL_SECONDS, ServiceAuth, loadConfig, serviceAuthConfig } from './index.js';

const SECRET = 'the-deployment-secret-0123456789abcdef';
const gateway = new ServiceAuth('gateway', SECRET);
const chat = new ServiceAuth('chat', SECRET);
const now = Date.UTC(2026, 0, 1);

describe('service tokens', () => {
  it('a token made for chat with the deployment secret names its caller there', () => {
    expect(chat.verify(gateway.sign('chat', now), now)).toBe('gateway');
    // Still valid near the end of its life and with a little clock skew.
    expect(chat.verify(gateway.sign('chat', now), now + (SERVICE_TOKEN_TTL_SECONDS + 20) * 1000)).toBe('gateway');
    expect(chat.verify(gateway.sign('chat', now + 20_000), now)).toBe('gateway');
  });

  it('refuses a token signed with another secret, or the public development one', () => {
    expect(chat.verify(new ServiceAuth('gateway', 'another-secret-of-the-same-length-0123').sign('chat', now), now)).toBeUndefined();
    expect(chat.verify(new ServiceAuth('gateway', DEVELOPMENT_SERVICE_AUTH_SECRET).sign('chat', now), now)).toBeUndefined();
  });

  it('refuses a token for another service (audience), and an expired or far-future one', () => {
    const identity = new ServiceAuth('identity', SECRET);
    expect(identity.verify(gateway.sign('chat', now), now)).toBeUndefined();
    expect(chat.verify(gateway.sign('chat', now), now + (SERVICE_TOKEN_TTL_SECONDS + 31) * 1000)).toBeUndefined();
    expect(chat.verify(gateway.sign('chat', now + 3_600_000), now)).toBeUndefined();
  });

  it('refuses any edit of a valid token: caller, audience, expiry, signature', () => {
    const [v, caller, aud, exp, sig] = gateway.sign('chat', now).split('.') as [string, string, string, string, string];
    const forged = [
      [v, 'delivery', aud, exp, sig],
      [v, caller, 'identity', exp, sig],
      [v, caller, aud, String(Number(exp) + 1), sig],
      [v, caller, aud, exp, `${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`],
      ['v2', caller, aud, exp, sig],
      [v, caller, aud, exp],
    ];
    for (const parts of forged) expect(chat.verify(parts.join('.'), now), parts.join('.')).toBeUndefined();
    for (const junk of [undefined, '', 'Bearer x', Buffer.from('x'), 'a'.repeat(10_000), `v1.gateway.chat.${exp}.${'A'.repeat(43)}`]) {
      expect(chat.verify(junk, now)).toBeUndefined();
    }
  });

  it('makes one token per audience per second, shared by the calls within it', () => {
    const signer = new ServiceAuth('gateway', SECRET);
    const t = signer.sign('chat', now);
    expect(signer.sign('chat', now + 999)).toBe(t);
    expect(signer.sign('identity', now)).not.toBe(t);
    const next = signer.sign('chat', now + 1000);
    expect(next).not.toBe(t);
    expect(chat.verify(next, now + 1000)).toBe('gateway');
    expect(Number(next.split('.')[3]) - Number(t.split('.')[3])).toBe(1);
    expect(() => signer.sign('Not A Name', now)).toThrow('invalid audience');
  });

  it('a token verified before is still refused once it expires, and only the exact token is remembered', () => {
    const verifier = new ServiceAuth('chat', SECRET);
    const t = gateway.sign('chat', now);
    expect(verifier.verify(t, now)).toBe('gateway');
    expect(verifier.verify(t, now + 1000)).toBe('gateway'); // remembered
    expect(verifier.verify(t, now + (SERVICE_TOKEN_TTL_SECONDS + 31) * 1000)).toBeUndefined();
    expect(verifier.verify(t, now - 3_600_000)).toBeUndefined(); // a clock gone back: far in its future
    const sig = t.split('.')[4]!;
    expect(verifier.verify(`${t.slice(0, -sig.length)}${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`, now)).toBeUndefined();
    expect(verifier.verify(t, now)).toBe('gateway');
  });

  it('accepts the previous secret during a rotation, and signs with the current one only', () => {
    const rotating = new ServiceAuth('chat', 'the-new-deployment-secret-0123456789ab', SECRET);
    expect(rotating.verify(gateway.sign('chat', now), now)).toBe('gateway');
    const signer = new ServiceAuth('gateway', 'the-new-deployment-secret-0123456789ab', SECRET);
    expect(chat.verify(signer.sign('chat', now), now)).toBeUndefined();
  });
});

describe('configuration', () => {
  it('production refuses to start without SERVICE_AUTH_SECRET; elsewhere the public development secret stands in', () => {
    expect(() => ServiceAuth.fromEnv('chat', { NODE_ENV: 'production' })).toThrow(ConfigError);
    expect(() => ServiceAuth.fromEnv('chat', { NODE_ENV: 'production' })).toThrow(/SERVICE_AUTH_SECRET is required/);
    const dev = ServiceAuth.fromEnv('chat', { NODE_ENV: 'development' });
    expect(dev.verify(new ServiceAuth('gateway', DEVELOPMENT_SERVICE_AUTH_SECRET).sign('chat'))).toBe('gateway');
    expect(ServiceAuth.fromEnv('chat', { NODE_ENV: 'production', SERVICE_AUTH_SECRET: SECRET }).verify(gateway.sign('chat'))).toBe('gateway');
  });

  it('refuses a short secret without echoing it', () => {
    try {
      loadConfig(serviceAuthConfig, { SERVICE_AUTH_SECRET: 'short-secret' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/SERVICE_AUTH_SECRET: must be at least 32 characters/);
      expect((err as Error).message).not.toContain('short-secret');
    }
  });
});
