// The whole identity path through the public HTTP API: the built identity
// service runs as a child process on its own database, Redis prefix and NATS
// prefix; the gateway runs in-process on an ephemeral port against it.
// Size: past 400 lines because its describes share one started identity
// service (starting one costs seconds); each describe is one route family.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { SignJWT, calculateJwkThumbprint, exportJWK, importPKCS8 } from 'jose';
import type { FastifyInstance } from 'fastify';
import { ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, LiveRevocations, ServiceAuth, connectRedis, createLogger, type Redis } from '@bil/runtime';
import { createTestEnv, type TestEnv } from '@bil/testkit';
import { buildApp } from '../src/app.js';
import { AccessTokenVerifier, JwksCache } from '../src/auth.js';
import { createIdentityClient, type IdentityApi } from '../src/identity-client.js';
import { RateLimiter } from '../src/rate-limit.js';
import { readiness } from '../src/readiness.js';
import {
  deviceRegistration,
  ed25519,
  httpClient,
  identityMain,
  randomUsername,
  rsaPublicKey,
  startIdentity,
  unavailableChat,
  type Ed25519Pair,
  type IdentityProcess,
  RPC_DEADLINE_MS,
} from './fixtures.js';

const PASSWORD = 'correct horse battery staple';
const PER_USERNAME = 8;
const PER_IP_BEHIND_PROXY = 3;

describe.skipIf(!existsSync(identityMain))('identity through the gateway (e2e)', () => {
  let env: TestEnv;
  let identity: IdentityProcess;
  let client: IdentityApi;
  let redis: Redis;
  let revocations: LiveRevocations;
  let app: FastifyInstance;
  let proxied: FastifyInstance;
  let http: ReturnType<typeof httpClient>;
  let httpProxied: ReturnType<typeof httpClient>;
  let jwtPrivatePem: string;
  let jwtKid: string;

  beforeAll(async () => {
    env = await createTestEnv('gw');
    const { privateKey } = generateKeyPairSync('ed25519');
    jwtPrivatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    jwtKid = await calculateJwkThumbprint(await exportJWK(createPublicKey(privateKey)));
    identity = await startIdentity({
      ...env.serviceEnv,
      LOG_LEVEL: 'info',
      IDENTITY_SCRYPT_LOG2N: '14',
      IDENTITY_JWT_PRIVATE_KEY: jwtPrivatePem,
    });
    client = createIdentityClient(identity.grpcUrl, RPC_DEADLINE_MS, ServiceAuth.fromEnv('gateway', env.serviceEnv));
    redis = connectRedis(env.redisUrl, env.redisPrefix);
    const logger = createLogger('gateway-e2e', process.env.TEST_LOG_LEVEL ?? 'silent');
    const jwks = new JwksCache({ fetch: () => client.getJwks(), minRefreshIntervalMs: 5000 });
    // As the gateway runs it: the revocation list mirrored in memory, so the revocations below test that path.
    revocations = new LiveRevocations(redis);
    const verifier = new AccessTokenVerifier({ jwks, revocations });
    const common = {
      logger,
      identity: client,
      chat: unavailableChat(),
      verifier,
      ready: readiness({ identity: client, chat: unavailableChat() }, redis, 2000, { token_keys: () => jwks.load() }),
      bodyLimitBytes: 64 * 1024,
    };
    app = await buildApp({
      ...common,
      limiter: new RateLimiter(redis, 60),
      limits: { perIp: 1000, perUsername: PER_USERNAME },
      trustProxyHops: 0,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    proxied = await buildApp({
      ...common,
      limiter: new RateLimiter(redis, 60),
      limits: { perIp: PER_IP_BEHIND_PROXY, perUsername: 1000 },
      trustProxyHops: 1,
    });
    await proxied.listen({ host: '127.0.0.1', port: 0 });
    const base = (a: FastifyInstance) => {
      const addr = a.server.address();
      return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    };
    http = httpClient(base(app));
    httpProxied = httpClient(base(proxied));
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await proxied?.close();
    client?.close();
    await revocations?.close();
    redis?.disconnect();
    await identity?.stop();
    await env?.cleanup();
  });

  interface Account {
    username: string;
    userId: string;
    identity: Ed25519Pair;
    deviceId: string;
    access: string;
    refresh: string;
  }

  async function signUp(prefix = 'u'): Promise<Account> {
    const username = randomUsername(prefix);
    const reg = await http('POST', '/v1/auth/register', { body: { username, password: PASSWORD } });
    expect(reg.status, reg.text).toBe(201);
    const idKey = ed25519();
    const dev = await http('POST', '/v1/auth/devices', {
      body: deviceRegistration({ username, password: PASSWORD, userId: reg.body.user.user_id, identity: idKey }),
    });
    expect(dev.status, dev.text).toBe(201);
    return {
      username,
      userId: reg.body.user.user_id,
      identity: idKey,
      deviceId: dev.body.device.device_id,
      access: dev.body.tokens.access_token,
      refresh: dev.body.tokens.refresh_token,
    };
  }

  function expectError(res: { status: number; body: unknown; text: string }, status: number, code: string) {
    expect(res.status, res.text).toBe(status);
    expect(res.body).toEqual({ error: { code, message: expect.any(String), details: expect.any(Object) } });
  }

  it('register → device → login → refresh → logout → revoke', async () => {
    const username = randomUsername('Alice');
    const reg = await http('POST', '/v1/auth/register', { body: { username, password: PASSWORD, display_name: 'Alice' } });
    expect(reg.status, reg.text).toBe(201);
    const user = reg.body.user;
    expect(user).toEqual({
      user_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      username,
      display_name: 'Alice',
      identity_key: '',
      identity_key_changed_at: '',
      created_at: expect.any(String),
    });

    // First device: creates the account identity key and certifies itself.
    const idKey = ed25519();
    const body = deviceRegistration({ username, password: PASSWORD, userId: user.user_id, identity: idKey, deviceName: 'phone' });
    const dev = await http('POST', '/v1/auth/devices', { body });
    expect(dev.status, dev.text).toBe(201);
    expect(dev.body.device).toEqual({
      device_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      user_id: user.user_id,
      name: 'phone',
      encryption_key: body.encryption_key,
      signing_key: body.signing_key,
      certificate: body.certificate,
      certificate_issued_at: body.certificate_issued_at,
      created_at: expect.any(String),
    });
    expect(dev.body.tokens).toMatchObject({ token_type: 'Bearer', session_id: expect.any(String) });
    const phone = dev.body.device.device_id as string;

    const me = await http('GET', '/v1/me', { token: dev.body.tokens.access_token });
    expect(me.status, me.text).toBe(200);
    expect(me.body.user.identity_key).toBe(idKey.publicKey);
    expect(me.body.devices.map((d: { device_id: string }) => d.device_id)).toEqual([phone]);

    // Login (new session) in any case of the username.
    const login = await http('POST', '/v1/auth/login', { body: { username: username.toUpperCase(), password: PASSWORD, device_id: phone } });
    expect(login.status, login.text).toBe(200);
    expect(login.body.user_id).toBe(user.user_id);
    const session = login.body.tokens;
    expect(session.session_id).not.toBe(dev.body.tokens.session_id);

    // Refresh rotates the pair.
    const r1 = await http('POST', '/v1/auth/refresh', { body: { refresh_token: session.refresh_token } });
    expect(r1.status, r1.text).toBe(200);
    expect(r1.body.tokens.refresh_token).not.toBe(session.refresh_token);
    expect(r1.body.tokens.session_id).toBe(session.session_id);
    expect((await http('GET', '/v1/me', { token: r1.body.tokens.access_token })).status).toBe(200);

    // Logout ends that session at once; the first device session keeps working.
    expect((await http('POST', '/v1/auth/logout', { token: r1.body.tokens.access_token })).status).toBe(204);
    expectError(await http('GET', '/v1/me', { token: r1.body.tokens.access_token }), 401, 'token_revoked');
    expectError(await http('POST', '/v1/auth/refresh', { body: { refresh_token: r1.body.tokens.refresh_token } }), 401, 'invalid_refresh_token');
    expect((await http('GET', '/v1/me', { token: dev.body.tokens.access_token })).status).toBe(200);

    // A second device, linked by the identity key; then revoked by the first.
    const laptopBody = deviceRegistration({ username, password: PASSWORD, userId: user.user_id, identity: idKey, deviceName: 'laptop' });
    const laptop = await http('POST', '/v1/auth/devices', { body: laptopBody });
    expect(laptop.status, laptop.text).toBe(201);
    const laptopId = laptop.body.device.device_id as string;
    expect((await http('GET', '/v1/me', { token: laptop.body.tokens.access_token })).status).toBe(200);

    const other = await signUp('bob');
    const dir = await http('GET', `/v1/users/${user.user_id}/devices`, { token: other.access });
    expect(dir.status, dir.text).toBe(200);
    expect(dir.body.user_id).toBe(user.user_id);
    expect(dir.body.identity_key).toBe(idKey.publicKey);
    expect(dir.body.devices.map((d: { device_id: string }) => d.device_id).sort()).toEqual([phone, laptopId].sort());

    const revoke = await http('DELETE', `/v1/devices/${laptopId}`, { token: dev.body.tokens.access_token });
    expect(revoke.status, revoke.text).toBe(200);
    expect(revoke.body).toEqual({ device_id: laptopId });
    // The revoked device's still-unexpired access token is refused at once.
    const refused = await http('GET', '/v1/me', { token: laptop.body.tokens.access_token });
    expectError(refused, 401, 'token_revoked');
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expectError(await http('POST', '/v1/auth/login', { body: { username, password: PASSWORD, device_id: laptopId } }), 403, 'device_revoked');
    const after = await http('GET', `/v1/users/${user.user_id}/devices`, { token: other.access });
    expect(after.body.devices.map((d: { device_id: string }) => d.device_id)).toEqual([phone]);
  });

  it('reusing a refresh token ends the whole session, newer tokens included', async () => {
    const a = await signUp('reuse');
    const r1 = await http('POST', '/v1/auth/refresh', { body: { refresh_token: a.refresh } });
    expect(r1.status, r1.text).toBe(200);
    const reused = await http('POST', '/v1/auth/refresh', { body: { refresh_token: a.refresh } });
    expectError(reused, 401, 'refresh_token_reused');
    const newer = await http('POST', '/v1/auth/refresh', { body: { refresh_token: r1.body.tokens.refresh_token } });
    expect(newer.status, newer.text).toBe(401);
    expect(['refresh_token_reused', 'invalid_refresh_token']).toContain(newer.body.error.code);
    expectError(await http('GET', '/v1/me', { token: r1.body.tokens.access_token }), 401, 'token_revoked');
    expectError(await http('POST', '/v1/auth/refresh', { body: { refresh_token: 'bil_rt.garbage' } }), 401, 'invalid_refresh_token');
  });

  it('finds users case-insensitively and refuses a username taken in another case', async () => {
    const a = await signUp('Carol');
    const found = await http('GET', `/v1/users?username=${encodeURIComponent(a.username.toUpperCase())}`, { token: a.access });
    expect(found.status, found.text).toBe(200);
    expect(found.body.user).toMatchObject({ user_id: a.userId, username: a.username, identity_key: a.identity.publicKey });
    expectError(await http('GET', '/v1/users?username=nobody_here_zz', { token: a.access }), 404, 'user_not_found');
    expectError(await http('GET', '/v1/users', { token: a.access }), 400, 'invalid_request');

    const twin = await http('POST', '/v1/auth/register', { body: { username: a.username.toUpperCase(), password: PASSWORD } });
    expectError(twin, 409, 'username_taken');
  });

  it.each([
    ['a Cyrillic а (homoglyph)', 'аlice_x'],
    ['a zero-width space', 'ali\u200bce'],
    ['too short', 'ab'],
    ['a leading dot', '.eve_x'],
  ])('refuses a username with %s', async (_label, username) => {
    const res = await http('POST', '/v1/auth/register', { body: { username, password: PASSWORD } });
    expectError(res, 400, 'invalid_username');
    expect(res.body.error.details.field).toBe('username');
  });

  it('refuses malformed input with the field named', async () => {
    const missing = await http('POST', '/v1/auth/register', { body: { username: randomUsername() } });
    expectError(missing, 400, 'invalid_request');
    expect(missing.body.error.details).toMatchObject({ location: 'body', field: 'password', reason: 'is required' });

    const wrongType = await http('POST', '/v1/auth/register', { body: { username: 42, password: PASSWORD } });
    expectError(wrongType, 400, 'invalid_request');
    expect(wrongType.body.error.details.field).toBe('username');

    const extra = await http('POST', '/v1/auth/login', {
      body: { username: 'x_user', password: PASSWORD, device_id: '0193a0c4-2222-7000-8000-000000000002', is_admin: true },
    });
    expectError(extra, 400, 'invalid_request');
    expect(extra.body.error.details.field).toBe('is_admin');

    const badUuid = await http('DELETE', '/v1/devices/not-a-uuid', { token: (await signUp('uuid')).access });
    expectError(badUuid, 400, 'invalid_request');
    expect(badUuid.body.error.details).toMatchObject({ location: 'params', field: 'device_id' });

    expectError(await http('POST', '/v1/auth/login', { raw: '{"username":"x",', headers: { 'content-type': 'application/json' } }), 400, 'invalid_json');
    expectError(await http('POST', '/v1/auth/login', { raw: 'username=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    expectError(await http('POST', '/v1/auth/register', { body: { username: 'big_one', password: 'x'.repeat(70 * 1024) } }), 413, 'payload_too_large');
    expectError(await http('GET', '/v1/no/such/route'), 404, 'not_found');
    expectError(await http('POST', '/v1/auth/register', { body: { username: randomUsername(), password: 'short' } }), 400, 'invalid_password');
  });

  it('keeps accounts apart: no cross-account revocation, no user enumeration at login', async () => {
    const a = await signUp('own');
    const b = await signUp('other');
    // B cannot revoke A's device.
    expectError(await http('DELETE', `/v1/devices/${a.deviceId}`, { token: b.access }), 404, 'device_not_found');
    expect((await http('GET', '/v1/me', { token: a.access })).status).toBe(200);
    // Unknown user and wrong password look the same.
    expectError(await http('POST', '/v1/auth/login', { body: { username: 'no_such_user_zz', password: PASSWORD, device_id: a.deviceId } }), 401, 'invalid_credentials');
    expectError(await http('POST', '/v1/auth/login', { body: { username: a.username, password: 'not the password', device_id: a.deviceId } }), 401, 'invalid_credentials');
    // B's device is not A's.
    expectError(await http('POST', '/v1/auth/login', { body: { username: a.username, password: PASSWORD, device_id: b.deviceId } }), 404, 'device_not_found');
    expectError(await http('GET', '/v1/users/0193a0c4-0000-7000-8000-00000000dead/devices', { token: a.access }), 404, 'user_not_found');
  });

  it('a second device must repeat the identity key; an identity reset revokes every other device at once', async () => {
    const a = await signUp('reset');
    const stranger = ed25519();
    const mismatch = deviceRegistration({ username: a.username, password: PASSWORD, userId: a.userId, identity: stranger });
    expectError(await http('POST', '/v1/auth/devices', { body: mismatch }), 409, 'identity_key_mismatch');

    const reset = await http('POST', '/v1/auth/devices', { body: { ...mismatch, reset_identity: true } });
    expect(reset.status, reset.text).toBe(201);
    expectError(await http('GET', '/v1/me', { token: a.access }), 401, 'token_revoked');
    const me = await http('GET', '/v1/me', { token: reset.body.tokens.access_token });
    expect(me.body.user.identity_key).toBe(stranger.publicKey);
    expect(me.body.user.identity_key_changed_at).not.toBe('');
    expect(me.body.devices.map((d: { device_id: string }) => d.device_id)).toEqual([reset.body.device.device_id]);
  });

  it('refuses malformed, weak and uncertified device keys', async () => {
    const username = randomUsername('keys');
    const reg = await http('POST', '/v1/auth/register', { body: { username, password: PASSWORD } });
    expect(reg.status).toBe(201);
    const idKey = ed25519();
    const good = () => deviceRegistration({ username, password: PASSWORD, userId: reg.body.user.user_id, identity: idKey });

    const garbage = deviceRegistration({
      username,
      password: PASSWORD,
      userId: reg.body.user.user_id,
      identity: idKey,
      encryptionKey: randomBytes(420).toString('base64url'),
    });
    const r1 = await http('POST', '/v1/auth/devices', { body: garbage });
    expectError(r1, 400, 'invalid_key');
    expect(r1.body.error.details.field).toBe('encryption_key');

    const weak = deviceRegistration({
      username,
      password: PASSWORD,
      userId: reg.body.user.user_id,
      identity: idKey,
      encryptionKey: rsaPublicKey(2048),
    });
    const r2 = await http('POST', '/v1/auth/devices', { body: weak });
    expectError(r2, 400, 'invalid_key');
    expect(r2.body.error.details.field).toBe('encryption_key');

    const notB64 = { ...good(), signing_key: 'not base64url!' };
    expect((await http('POST', '/v1/auth/devices', { body: notB64 })).status).toBe(400);

    // Certificate signed by a key other than the identity key it names.
    const forged = { ...good(), certificate: deviceRegistration({ username, password: PASSWORD, userId: reg.body.user.user_id, identity: ed25519() }).certificate };
    expectError(await http('POST', '/v1/auth/devices', { body: forged }), 400, 'invalid_certificate');

    // Certificate for another user id.
    const otherUser = deviceRegistration({ username, password: PASSWORD, userId: '0193a0c4-0000-7000-8000-000000000009', identity: idKey });
    expectError(await http('POST', '/v1/auth/devices', { body: otherUser }), 400, 'invalid_certificate');

    const wrongPw = { ...good(), password: 'wrong password 123' };
    expectError(await http('POST', '/v1/auth/devices', { body: wrongPw }), 401, 'invalid_credentials');

    const negative = { ...good(), certificate_issued_at: -1 };
    expectError(await http('POST', '/v1/auth/devices', { body: negative }), 400, 'invalid_request');
    const fraction = { ...good(), certificate_issued_at: 1.5 };
    expectError(await http('POST', '/v1/auth/devices', { body: fraction }), 400, 'invalid_request');

    expect((await http('POST', '/v1/auth/devices', { body: good() })).status).toBe(201);
  });

  describe('access tokens', () => {
    const now = () => Math.floor(Date.now() / 1000);
    async function signWith(pem: string, kid: string, claims: { sub: string; did: string; sid: string }, o: { aud?: string; exp?: number } = {}) {
      return new SignJWT({ did: claims.did, sid: claims.sid })
        .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
        .setSubject(claims.sub)
        .setIssuer(ACCESS_TOKEN_ISSUER)
        .setAudience(o.aud ?? ACCESS_TOKEN_AUDIENCE)
        .setIssuedAt(now() - 60)
        .setExpirationTime(o.exp ?? now() + 600)
        .sign(await importPKCS8(pem, 'EdDSA'));
    }
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

    it('refuses missing, malformed, expired, forged, wrong-audience and alg=none tokens', async () => {
      const a = await signUp('tok');
      const me = await http('GET', '/v1/me', { token: a.access });
      expect(me.status).toBe(200);
      const claims = { sub: a.userId, did: a.deviceId, sid: JSON.parse(Buffer.from(a.access.split('.')[1]!, 'base64url').toString()).sid };

      // The identity key itself signs a token the test made: accepted (proves the setup).
      expect((await http('GET', '/v1/me', { token: await signWith(jwtPrivatePem, jwtKid, claims) })).status).toBe(200);

      const missing = await http('GET', '/v1/me');
      expectError(missing, 401, 'missing_token');
      expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expectError(await http('GET', '/v1/me', { token: 'abc' }), 401, 'invalid_token');
      expectError(await http('GET', '/v1/me', { headers: { authorization: `Basic ${b64('u:p')}` } }), 401, 'missing_token');

      const expired = await signWith(jwtPrivatePem, jwtKid, claims, { exp: now() - 120 });
      expectError(await http('GET', '/v1/me', { token: expired }), 401, 'token_expired');

      const wrongAud = await signWith(jwtPrivatePem, jwtKid, claims, { aud: 'some-other-api' });
      expectError(await http('GET', '/v1/me', { token: wrongAud }), 401, 'invalid_token');

      const otherKey = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
      expectError(await http('GET', '/v1/me', { token: await signWith(otherKey, jwtKid, claims) }), 401, 'invalid_token');
      expectError(await http('GET', '/v1/me', { token: await signWith(otherKey, 'unknown-kid', claims) }), 401, 'invalid_token');

      const none = `${b64({ alg: 'none', typ: 'JWT', kid: jwtKid })}.${b64({ ...claims, iss: ACCESS_TOKEN_ISSUER, aud: ACCESS_TOKEN_AUDIENCE, exp: now() + 600 })}.`;
      expectError(await http('GET', '/v1/me', { token: none }), 401, 'invalid_token');

      // Tampered payload under a genuine signature.
      const [h, , s] = a.access.split('.');
      const tampered = `${h}.${b64({ ...claims, sub: randomBytes(8).toString('hex'), iss: ACCESS_TOKEN_ISSUER, aud: ACCESS_TOKEN_AUDIENCE, exp: now() + 600 })}.${s}`;
      expectError(await http('GET', '/v1/me', { token: tampered }), 401, 'invalid_token');
    });
  });

  it('updates the profile, changes the password and deletes the account', async () => {
    const a = await signUp('prof');
    const upd = await http('PATCH', '/v1/me', { token: a.access, body: { display_name: 'Prof. X' } });
    expect(upd.status, upd.text).toBe(200);
    expect(upd.body.user.display_name).toBe('Prof. X');
    expectError(await http('PATCH', '/v1/me', { token: a.access, body: { display_name: 'bad\u0000name' } }), 400, 'invalid_characters');

    const second = await http('POST', '/v1/auth/login', { body: { username: a.username, password: PASSWORD, device_id: a.deviceId } });
    expect(second.status).toBe(200);
    const NEW = 'a much better passphrase';
    expectError(await http('POST', '/v1/me/password', { token: a.access, body: { old_password: 'wrong password!', new_password: NEW } }), 401, 'invalid_credentials');
    expect((await http('POST', '/v1/me/password', { token: a.access, body: { old_password: PASSWORD, new_password: NEW } })).status).toBe(204);
    // Every other session ends; the caller's stays.
    expectError(await http('GET', '/v1/me', { token: second.body.tokens.access_token }), 401, 'token_revoked');
    expect((await http('GET', '/v1/me', { token: a.access })).status).toBe(200);
    expectError(await http('POST', '/v1/auth/login', { body: { username: a.username, password: PASSWORD, device_id: a.deviceId } }), 401, 'invalid_credentials');

    expectError(await http('DELETE', '/v1/me', { token: a.access, body: { password: PASSWORD } }), 401, 'invalid_credentials');
    expect((await http('DELETE', '/v1/me', { token: a.access, body: { password: NEW } })).status).toBe(204);
    expectError(await http('GET', '/v1/me', { token: a.access }), 401, 'token_revoked');
    expect((await http('POST', '/v1/auth/login', { body: { username: a.username, password: NEW, device_id: a.deviceId } })).status).toBe(401);
  });

  it('rate-limits sign-in per username with 429 and Retry-After', async () => {
    const a = await signUp('rl'); // 2 attempts counted (register + device)
    const attempt = () => http('POST', '/v1/auth/login', { body: { username: a.username.toUpperCase(), password: 'wrong password 1', device_id: a.deviceId } });
    for (let i = 2; i < PER_USERNAME; i++) expectError(await attempt(), 401, 'invalid_credentials');
    const limited = await attempt();
    expectError(limited, 429, 'rate_limited');
    const retry = Number(limited.headers.get('retry-after'));
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(60);
    expect(limited.body.error.details.retry_after_seconds).toBe(retry);
    // Even the right password is refused until the window ends.
    expectError(await http('POST', '/v1/auth/login', { body: { username: a.username, password: PASSWORD, device_id: a.deviceId } }), 429, 'rate_limited');
  });

  it('rate-limits per client address, taken from X-Forwarded-For only behind a trusted proxy', async () => {
    const ip = `203.0.113.${1 + Math.floor(Math.random() * 250)}`;
    const attempt = (xff: string) =>
      httpProxied('POST', '/v1/auth/login', {
        headers: { 'x-forwarded-for': xff },
        body: { username: randomUsername('ip'), password: 'wrong password 1', device_id: '0193a0c4-2222-7000-8000-000000000002' },
      });
    // The proxy appends the address it saw; what the client claimed before it is ignored.
    for (let i = 0; i < PER_IP_BEHIND_PROXY; i++) expect((await attempt(`10.${i}.0.1, ${ip}`)).status).toBe(401);
    expectError(await attempt(ip), 429, 'rate_limited');
    // Another client address has its own budget.
    expect((await attempt('198.51.100.7')).status).toBe(401);
    expect(await redis.exists(`gw:rl:auth:ip:${ip}`)).toBe(1);

    // Without a trusted proxy the header is ignored: the counter is the socket's address.
    const spoofed = '192.0.2.99';
    await http('POST', '/v1/auth/login', {
      headers: { 'x-forwarded-for': spoofed },
      body: { username: randomUsername('ip'), password: 'wrong password 1', device_id: '0193a0c4-2222-7000-8000-000000000002' },
    });
    expect(await redis.exists(`gw:rl:auth:ip:${spoofed}`)).toBe(0);
    expect(await redis.exists('gw:rl:auth:ip:127.0.0.1')).toBe(1);
  });

  it('carries the correlation id to identity and back', async () => {
    const cid = `e2e-${randomBytes(6).toString('hex')}`;
    const res = await http('POST', '/v1/auth/login', {
      headers: { 'x-correlation-id': cid },
      body: { username: randomUsername('cid'), password: 'wrong password 1', device_id: '0193a0c4-2222-7000-8000-000000000002' },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('x-correlation-id')).toBe(cid);
    await new Promise((r) => setTimeout(r, 200));
    const line = identity
      .output()
      .split('\n')
      .find((l) => l.includes(cid));
    expect(line, 'identity logged the forwarded correlation id').toBeDefined();
    // Passwords never reach the logs.
    expect(identity.output()).not.toContain('wrong password 1');
  });

  it('reports readiness and serves an OpenAPI document listing every route', async () => {
    const ready = await http('GET', '/readyz');
    expect(ready.status, ready.text).toBe(200);
    expect((await http('GET', '/healthz')).body).toEqual({ status: 'ok' });

    const doc = await http('GET', '/v1/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    const ops = Object.entries(doc.body.paths as Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>>).flatMap(
      ([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`),
    );
    // The chat and digest routes are checked with their own tests; the blob routes' behaviour too (src/blob-routes.unit.spec.ts).
    expect(ops.filter((o) => !/\/v1\/(chats|unread|digest)/.test(o)).sort()).toEqual(
      [
        'POST /v1/auth/register',
        'POST /v1/auth/devices',
        'POST /v1/auth/login',
        'POST /v1/auth/refresh',
        'POST /v1/auth/logout',
        'DELETE /v1/devices/{device_id}',
        'GET /v1/users',
        'GET /v1/users/{user_id}/devices',
        'GET /v1/me',
        'PATCH /v1/me',
        'DELETE /v1/me',
        'POST /v1/me/password',
        'PUT /v1/me/device-list',
        'GET /v1/push/vapid-key',
        'PUT /v1/devices/{device_id}/push-subscription',
        'DELETE /v1/devices/{device_id}/push-subscription',
        'POST /v1/blobs',
        'GET /v1/blobs/{blob_id}',
        'PUT /v1/blobs/{blob_id}/content',
        'GET /v1/blobs/{blob_id}/content',
        'POST /v1/blobs/{blob_id}/upload-url',
        'POST /v1/blobs/{blob_id}/uploaded',
        'GET /v1/blobs/{blob_id}/download-urls',
        'GET /v1/openapi.json',
        'GET /healthz',
        'GET /readyz',
      ].sort(),
    );
    const paths = doc.body.paths;
    for (const [path, method] of [
      ['/v1/auth/logout', 'post'],
      ['/v1/devices/{device_id}', 'delete'],
      ['/v1/users', 'get'],
      ['/v1/users/{user_id}/devices', 'get'],
      ['/v1/me', 'get'],
      ['/v1/me', 'patch'],
      ['/v1/me', 'delete'],
      ['/v1/me/password', 'post'],
      ['/v1/devices/{device_id}/push-subscription', 'put'],
      ['/v1/devices/{device_id}/push-subscription', 'delete'],
      ['/v1/blobs', 'post'],
      ['/v1/blobs/{blob_id}', 'get'],
      ['/v1/blobs/{blob_id}/content', 'put'],
      ['/v1/blobs/{blob_id}/content', 'get'],
      ['/v1/blobs/{blob_id}/upload-url', 'post'],
      ['/v1/blobs/{blob_id}/uploaded', 'post'],
      ['/v1/blobs/{blob_id}/download-urls', 'get'],
    ] as const) {
      expect(paths[path][method].security, `${method} ${path}`).toEqual([{ bearerAuth: [] }]);
      expect(paths[path][method].responses['401'], `${method} ${path}`).toBeDefined();
    }
    expect(paths['/v1/auth/login'].post.security).toBeUndefined();
    expect(paths['/v1/auth/login'].post.responses['429']).toBeDefined();
    expect(doc.body.components.schemas.Error).toBeDefined();
  });

  // Runs last: it stops the identity service.
  it('answers 503 service_unavailable with Retry-After when identity is down, still verifying tokens locally, and stays ready (degraded)', async () => {
    const a = await signUp('down');
    await identity.stop();
    const login = await http('POST', '/v1/auth/login', { body: { username: a.username, password: PASSWORD, device_id: a.deviceId } });
    expectError(login, 503, 'service_unavailable');
    expect(login.headers.get('retry-after')).toBe('2');
    expect(login.body.error.details).toEqual({ retry_after_seconds: 2 });
    // The token is checked without identity (cached JWKS): a bad one is still 401, a good one reaches the outage.
    expectError(await http('GET', '/v1/me', { token: 'x.y.z' }), 401, 'invalid_token');
    const me = await http('GET', '/v1/me', { token: a.access });
    expectError(me, 503, 'service_unavailable');
    expect(me.headers.get('retry-after')).toBe('2');
    // Every gateway shares identity: dropping out of rotation would stop messaging too, which works with the tokens already issued.
    const ready = await http('GET', '/readyz');
    expect(ready.status, ready.text).toBe(200);
    expect(ready.body).toEqual({ status: 'degraded', checks: { identity: 'down', chat: 'ok', redis: 'ok', token_keys: 'ok' } });
  });
});
