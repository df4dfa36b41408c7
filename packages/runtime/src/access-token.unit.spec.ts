import { describe, expect, it } from 'vitest';
import { generateKeyPair, exportJWK, SignJWT, calculateJwkThumbprint, type JWK, type CryptoKey } from 'jose';
import { AppError } from './errors.js';
import { ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER } from './tokens.js';
import { AccessTokenVerifier, JwksCache, bearerToken, parseJwks } from './access-token.js';

interface Signer {
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signer(): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk: { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: 'EdDSA', use: 'sig' } };
}

const CLAIMS = { did: 'device-1', sid: 'session-1' };

function token(s: Signer, opts: { exp?: number; aud?: string; iss?: string; kid?: string; claims?: Record<string, unknown> } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(opts.claims ?? CLAIMS)
    .setProtectedHeader({ alg: 'EdDSA', kid: opts.kid ?? s.jwk.kid!, typ: 'at+jwt' })
    .setSubject('user-1')
    .setIssuer(opts.iss ?? ACCESS_TOKEN_ISSUER)
    .setAudience(opts.aud ?? ACCESS_TOKEN_AUDIENCE)
    .setIssuedAt(now - 10)
    .setExpirationTime(opts.exp ?? now + 600)
    .sign(s.privateKey);
}

function b64(o: unknown) {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    return (err as AppError).code;
  }
}

function setup(keys: JWK[], revoked = false, now = () => Date.now()) {
  let served = keys;
  const jwks = new JwksCache({ fetch: async () => JSON.stringify({ keys: served }), minRefreshIntervalMs: 5000, now });
  const verifier = new AccessTokenVerifier({ jwks, revocations: { isRevoked: async () => revoked } });
  return { jwks, verifier, serve: (k: JWK[]) => (served = k) };
}

describe('bearerToken', () => {
  it('extracts the token of a Bearer header', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('bearer   abc.def.ghi ')).toBe('abc.def.ghi');
  });
  it.each([undefined, '', 'Basic dXNlcjpwdw=='])('refuses %j as missing_token', (h) => {
    expect(() => bearerToken(h)).toThrow(expect.objectContaining({ code: 'missing_token' }));
  });
  it.each(['Bearer', 'Bearer a b', 'Bearer ä', `Bearer ${'a'.repeat(5000)}`])('refuses %j as invalid_token', (h) => {
    expect(() => bearerToken(h)).toThrow(expect.objectContaining({ code: 'invalid_token' }));
  });
});

describe('parseJwks', () => {
  it('keeps only Ed25519 public keys', () => {
    const jwks = parseJwks(
      JSON.stringify({
        keys: [
          { kty: 'OKP', crv: 'Ed25519', x: 'a', kid: '1', alg: 'EdDSA' },
          { kty: 'OKP', crv: 'Ed25519', x: 'a', d: 'secret', kid: '2' },
          { kty: 'RSA', n: 'a', e: 'AQAB', kid: '3' },
          { kty: 'oct', k: 'c2VjcmV0', kid: '4' },
        ],
      }),
    );
    expect(jwks.keys.map((k) => k.kid)).toEqual(['1']);
  });
  it('refuses what is not a JWK Set', () => {
    expect(() => parseJwks('{"foo":1}')).toThrow();
  });
});

describe('AccessTokenVerifier', () => {
  it('accepts a valid token and returns the actor', async () => {
    const s = await signer();
    const { verifier } = setup([s.jwk]);
    const actor = await verifier.verify(await token(s));
    expect(actor).toEqual({ userId: 'user-1', deviceId: 'device-1', sessionId: 'session-1', expiresAt: expect.any(Number) });
    expect(actor.expiresAt).toBeGreaterThan(Date.now());
  });

  it('classifies bad tokens', async () => {
    const s = await signer();
    const other = await signer();
    const { verifier } = setup([s.jwk]);
    const now = Math.floor(Date.now() / 1000);
    expect(await code(verifier.verify(await token(s, { exp: now - 60 })))).toBe('token_expired');
    expect(await code(verifier.verify(await token(s, { aud: 'other' })))).toBe('invalid_token');
    expect(await code(verifier.verify(await token(s, { iss: 'evil' })))).toBe('invalid_token');
    expect(await code(verifier.verify(await token(s, { claims: { did: 'd' } })))).toBe('invalid_token');
    // Signed by another key but claiming the trusted key id.
    expect(await code(verifier.verify(await token(other, { kid: s.jwk.kid! })))).toBe('invalid_token');
    // alg=none with no signature.
    const none = `${b64({ alg: 'none', kid: s.jwk.kid })}.${b64({ sub: 'user-1', ...CLAIMS, iss: ACCESS_TOKEN_ISSUER, aud: ACCESS_TOKEN_AUDIENCE, exp: now + 600 })}.`;
    expect(await code(verifier.verify(none))).toBe('invalid_token');
    // HS256 with the public key as the secret (algorithm confusion).
    const hs = `${b64({ alg: 'HS256', kid: s.jwk.kid })}.${b64({ sub: 'user-1', ...CLAIMS })}.c2ln`;
    expect(await code(verifier.verify(hs))).toBe('invalid_token');
    expect(await code(verifier.verify('not-a-jwt'))).toBe('invalid_token');
  });

  it('remembers a verified token, but checks revocation and expiry on every use and drops it when its key is withdrawn', async () => {
    const s = await signer();
    let revoked = false;
    let clock = 1_000_000;
    let served = [s.jwk];
    const jwks = new JwksCache({ fetch: async () => JSON.stringify({ keys: served }), minRefreshIntervalMs: 0, maxAgeMs: 1, now: () => clock });
    const verifier = new AccessTokenVerifier({ jwks, revocations: { isRevoked: async () => revoked } });
    const now = Math.floor(Date.now() / 1000);
    const t = await token(s, { exp: now + 30 });
    expect(await code(verifier.verify(t))).toBe('ok');
    expect(await code(verifier.verify(t))).toBe('ok');
    revoked = true;
    expect(await code(verifier.verify(t))).toBe('token_revoked');
    revoked = false;
    // Identity withdraws the key: the next refresh drops it, and the remembered token with it.
    served = [];
    clock += 10;
    await jwks.forKid('other'); // an unknown kid refetches at once (interval 0)
    expect(await code(verifier.verify(t))).toBe('invalid_token');
    // Expiry is checked on every use of a remembered token.
    served = [s.jwk];
    clock += 10;
    await jwks.forKid('other');
    const short = await token(s, { exp: now + 1 });
    const v2 = new AccessTokenVerifier({ jwks, revocations: { isRevoked: async () => false }, clockToleranceSeconds: 0 });
    expect(await code(v2.verify(short))).toBe('ok');
    await new Promise((r) => setTimeout(r, 2100));
    expect(await code(v2.verify(short))).toBe('token_expired');
  });

  it('refuses a revoked token', async () => {
    const s = await signer();
    const { verifier } = setup([s.jwk], true);
    expect(await code(verifier.verify(await token(s)))).toBe('token_revoked');
  });

  it('answers 503 when the revocation list is unreachable', async () => {
    const s = await signer();
    const jwks = new JwksCache({ fetch: async () => JSON.stringify({ keys: [s.jwk] }), minRefreshIntervalMs: 0 });
    const verifier = new AccessTokenVerifier({ jwks, revocations: { isRevoked: () => Promise.reject(new Error('ECONNREFUSED')) } });
    expect(await code(verifier.verify(await token(s)))).toBe('service_unavailable');
  });

  it('refetches the JWKS for an unknown kid at most once per interval', async () => {
    const s1 = await signer();
    const s2 = await signer();
    let clock = 1_000_000;
    const { jwks, verifier, serve } = setup([s1.jwk], false, () => clock);
    expect(await code(verifier.verify(await token(s1)))).toBe('ok');
    expect(jwks.fetches).toBe(1);
    // Identity rotates to s2: the first token with the new kid triggers one refetch.
    serve([s2.jwk, s1.jwk]);
    clock += 6000;
    expect(await code(verifier.verify(await token(s2)))).toBe('ok');
    expect(jwks.fetches).toBe(2);
    // Unknown kids in a burst cause no further fetches within the interval.
    const rogue = await signer();
    for (let i = 0; i < 5; i++) expect(await code(verifier.verify(await token(rogue)))).toBe('invalid_token');
    expect(jwks.fetches).toBe(2);
    clock += 6000;
    expect(await code(verifier.verify(await token(rogue)))).toBe('invalid_token');
    expect(jwks.fetches).toBe(3);
  });

  it('shares one fetch between concurrent first requests and reports 503 when identity is down', async () => {
    const s = await signer();
    let calls = 0;
    const jwks = new JwksCache({
      fetch: async () => {
        calls += 1;
        await new Promise((r) => setTimeout(r, 20));
        return JSON.stringify({ keys: [s.jwk] });
      },
      minRefreshIntervalMs: 5000,
    });
    await Promise.all([jwks.forKid('a'), jwks.forKid('b'), jwks.forKid('c')]);
    expect(calls).toBe(1);

    const down = new JwksCache({ fetch: () => Promise.reject(new AppError('unavailable', 'service_unavailable', 'down')), minRefreshIntervalMs: 5000 });
    const verifier = new AccessTokenVerifier({ jwks: down, revocations: { isRevoked: async () => false } });
    expect(await code(verifier.verify(await token(s)))).toBe('service_unavailable');
  });
});
