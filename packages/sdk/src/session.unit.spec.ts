// Token handling against an in-memory gateway: refresh ahead of expiry, once
// after `token_expired`, one refresh in flight however many calls wait, rotated
// tokens persisted, and a dead session reported as SessionEndedError.
import { describe, expect, it } from 'vitest';
import { BilClient } from './client.js';
import { BilApiError, BilNetworkError, BilStateError, SessionEndedError } from './errors.js';
import { MemoryKeyStore } from './key-store.js';
import { fakeGateway, fakeProfile } from './testing/fake-gateway.js';

async function given(options: { accessTtlMs?: number; refreshSkewMs?: number } = {}) {
  const gw = fakeGateway();
  if (options.accessTtlMs) gw.accessTtlMs = options.accessTtlMs;
  const tokens = gw.issue();
  const store = new MemoryKeyStore();
  await store.save(fakeProfile(tokens, gw.clock.now));
  const client = new BilClient({
    baseUrl: 'http://gateway.test/',
    keyStore: store,
    fetch: gw.fetch,
    now: () => gw.clock.now,
    ...(options.refreshSkewMs !== undefined ? { refreshSkewMs: options.refreshSkewMs } : {}),
  });
  const refreshes = () => gw.calls.filter((c) => c === 'POST /v1/auth/refresh').length;
  return { gw, store, client, refreshes };
}

describe('session tokens', () => {
  it('uses a fresh access token without refreshing', async () => {
    const { client, refreshes } = await given();
    await client.me();
    expect(refreshes()).toBe(0);
  });

  it('refreshes ahead of expiry and persists the rotated pair', async () => {
    const { gw, client, store, refreshes } = await given({ refreshSkewMs: 60_000 });
    const seen: number[] = [];
    client.on('tokens-refreshed', (e) => seen.push(e.accessTokenExpiresAt));
    gw.clock.now += 900_000 - 30_000; // 30 s left, inside the 60 s window
    await client.me();
    expect(refreshes()).toBe(1);
    expect(gw.calls).toEqual(['POST /v1/auth/refresh', 'GET /v1/me']);
    const stored = await store.load();
    expect(stored?.tokens?.refreshToken).toBe('rt.2');
    expect(seen).toEqual([stored?.tokens?.accessTokenExpiresAt]);
  });

  it('caps the refresh window at half the lifetime of short tokens', async () => {
    const { gw, client, refreshes } = await given({ accessTtlMs: 31_000, refreshSkewMs: 60_000 });
    gw.clock.now += 10_000;
    await client.me();
    expect(refreshes()).toBe(0);
    gw.clock.now += 6_000; // 16 s of 31 s
    await client.me();
    expect(refreshes()).toBe(1);
  });

  it('refreshes once after a 401 token_expired and retries the call', async () => {
    const { gw, client, refreshes } = await given();
    gw.failNext('/v1/me', 401, 'token_expired');
    const me = await client.me();
    expect(me.user.username).toBe('alice');
    expect(refreshes()).toBe(1);
    expect(gw.calls).toEqual(['GET /v1/me', 'POST /v1/auth/refresh', 'GET /v1/me']);
  });

  it('serialises concurrent refreshes: one in flight, every caller gets the new token', async () => {
    const { gw, client, refreshes } = await given();
    gw.refreshDelayMs = 20;
    gw.clock.now += 900_000 + 1; // expired
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => client.updateProfile({ displayName: `n${i}` })));
    expect(results.map((u) => u.displayName)).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7']);
    expect(refreshes()).toBe(1);
  });

  it('serialises refreshes triggered by concurrent 401s', async () => {
    const { gw, store, refreshes } = await given();
    gw.refreshDelayMs = 20;
    // This client's clock lags: it believes the token is fresh, the server says it expired.
    const lagging = new BilClient({ baseUrl: 'http://gateway.test', keyStore: store, fetch: gw.fetch, now: () => gw.clock.now - 3_600_000 });
    gw.clock.now += 900_001;
    await Promise.all([lagging.me(), lagging.me(), lagging.me(), lagging.me()]);
    expect(refreshes()).toBe(1);
    expect(gw.calls.filter((c) => c === 'GET /v1/me')).toHaveLength(8); // each call: 401, then the retry
  });

  it('a reused refresh token ends the session: SessionEndedError, tokens dropped, event emitted', async () => {
    const { gw, client, store } = await given();
    const ended: string[] = [];
    client.on('session-ended', (e) => ended.push(e.code));
    // Someone else (a stolen copy) rotates the pair first, then presents the spent token.
    const stolen = (await store.load())!.tokens!.refreshToken;
    await gw.fetch('http://gateway.test/v1/auth/refresh', { method: 'POST', body: JSON.stringify({ refresh_token: stolen }) });
    gw.clock.now += 900_001;
    const err = await client.me().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionEndedError);
    expect(err).toBeInstanceOf(BilApiError);
    expect(err).toMatchObject({ status: 401, code: 'refresh_token_reused' });
    expect(ended).toEqual(['refresh_token_reused']);
    expect((await store.load())?.tokens).toBeNull();
    expect((await client.account())?.signedIn).toBe(false);
    await expect(client.me()).rejects.toMatchObject({ name: 'BilStateError', code: 'not_signed_in' });
  });

  it.each(['refresh_token_reused', 'invalid_refresh_token', 'session_expired'])('refresh answered %s → SessionEndedError', async (code) => {
    const { gw, client } = await given();
    gw.failNext('/v1/auth/refresh', 401, code);
    gw.clock.now += 900_001;
    await expect(client.me()).rejects.toSatisfy((e) => e instanceof SessionEndedError && e.code === code);
  });

  it('a revoked token is a SessionEndedError too', async () => {
    const { gw, client } = await given();
    gw.failNext('/v1/me', 401, 'token_revoked');
    await expect(client.me()).rejects.toBeInstanceOf(SessionEndedError);
  });

  it('a refresh ahead of time that fails on the network still lets a valid token through', async () => {
    const { gw, store } = await given();
    const client = new BilClient({
      baseUrl: 'http://gateway.test',
      keyStore: store,
      now: () => gw.clock.now,
      fetch: async (input, init) => {
        if (input.endsWith('/v1/auth/refresh')) throw new TypeError('fetch failed');
        return gw.fetch(input, init);
      },
    });
    gw.clock.now += 900_000 - 10_000; // due for refresh, not expired
    await expect(client.me()).resolves.toMatchObject({ user: { username: 'alice' } });
    gw.clock.now += 10_000; // now expired: the refresh failure surfaces
    await expect(client.me()).rejects.toBeInstanceOf(BilNetworkError);
  });
});

describe('errors', () => {
  it('carries the API code, status, details and correlation id', async () => {
    const { gw, client } = await given();
    gw.failNext('/v1/me', 429, 'rate_limited', { retry_after_seconds: 7 });
    const err = await client.me().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BilApiError);
    expect(err).toMatchObject({ status: 429, code: 'rate_limited', message: 'rate limited', details: { retry_after_seconds: 7 }, correlationId: 'corr-1' });
  });

  it('reports transport failures as BilNetworkError', async () => {
    const store = new MemoryKeyStore();
    const client = new BilClient({
      baseUrl: 'http://gateway.test',
      keyStore: store,
      fetch: async () => {
        throw new TypeError('fetch failed');
      },
    });
    await expect(client.register({ username: 'alice', password: 'correct horse battery' })).rejects.toSatisfy(
      (e) => e instanceof BilNetworkError && e.code === 'network',
    );
  });

  it('reports a timeout as BilNetworkError with code timeout', async () => {
    const client = new BilClient({
      baseUrl: 'http://gateway.test',
      keyStore: new MemoryKeyStore(),
      timeoutMs: 10,
      fetch: (_input, init) =>
        new Promise((_resolve, reject) => init.signal?.addEventListener('abort', () => reject(init.signal?.reason))),
    });
    await expect(client.contacts.find('bob')).rejects.toBeInstanceOf(BilStateError);
    await expect(client.register({ username: 'alice', password: 'correct horse battery' })).rejects.toMatchObject({
      name: 'BilNetworkError',
      code: 'timeout',
    });
  });

  it('a non-JSON error answer still becomes BilApiError', async () => {
    const client = new BilClient({
      baseUrl: 'http://gateway.test',
      keyStore: new MemoryKeyStore(),
      fetch: async () => new Response('<html>bad gateway</html>', { status: 502 }),
    });
    await expect(client.register({ username: 'alice', password: 'correct horse battery' })).rejects.toMatchObject({
      name: 'BilApiError',
      status: 502,
      code: 'http_502',
    });
  });
});
