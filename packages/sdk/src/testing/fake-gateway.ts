// An in-memory stand-in for the gateway's token endpoints, for unit tests of
// the session logic: single-use refresh tokens with reuse detection (RFC 9700),
// access tokens that expire on a controllable clock, and call counters.
import type { StoredProfile } from '../key-store.js';

export interface FakeGateway {
  fetch: (input: string, init: RequestInit) => Promise<Response>;
  clock: { now: number };
  /** Requests seen, as "METHOD /path". */
  calls: string[];
  /** Issues a fresh token pair (as a sign-in would). */
  issue(): { access: string; refresh: string; accessExpiresAt: number };
  /** Makes the next request of `path` fail with this error answer. */
  failNext(path: string, status: number, code: string, details?: Record<string, unknown>): void;
  /** Delay in ms before the refresh endpoint answers (to overlap concurrent calls). */
  refreshDelayMs: number;
  accessTtlMs: number;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'x-correlation-id': 'corr-1', ...headers },
  });

const apiError = (status: number, code: string, details: Record<string, unknown> = {}) =>
  json(status, { error: { code, message: code.replace(/_/g, ' '), details } });

export function fakeGateway(): FakeGateway {
  const clock = { now: 1_764_100_000_000 };
  let generation = 0;
  let current = { access: '', refresh: '', accessExpiresAt: 0 };
  const spent = new Set<string>();
  let ended = false;
  const failures = new Map<string, { status: number; code: string; details?: Record<string, unknown> }>();

  const gw: FakeGateway = {
    clock,
    calls: [],
    refreshDelayMs: 0,
    accessTtlMs: 900_000,
    issue() {
      generation += 1;
      current = { access: `at.${generation}`, refresh: `rt.${generation}`, accessExpiresAt: clock.now + gw.accessTtlMs };
      ended = false;
      return current;
    },
    failNext(path, status, code, details) {
      failures.set(path, { status, code, ...(details ? { details } : {}) });
    },
    async fetch(input, init) {
      const url = new URL(input);
      const method = init.method ?? 'GET';
      gw.calls.push(`${method} ${url.pathname}`);
      const failure = failures.get(url.pathname);
      if (failure) {
        failures.delete(url.pathname);
        return apiError(failure.status, failure.code, failure.details);
      }
      if (url.pathname === '/v1/auth/refresh') {
        const { refresh_token } = JSON.parse(String(init.body)) as { refresh_token: string };
        if (gw.refreshDelayMs) await new Promise((r) => setTimeout(r, gw.refreshDelayMs));
        if (ended) return apiError(401, 'invalid_refresh_token');
        if (spent.has(refresh_token)) {
          ended = true;
          return apiError(401, 'refresh_token_reused');
        }
        if (refresh_token !== current.refresh) return apiError(401, 'invalid_refresh_token');
        spent.add(refresh_token);
        const t = gw.issue();
        return json(200, { tokens: tokensJson(t, clock.now) });
      }
      const auth = new Headers(init.headers).get('authorization');
      if (!auth) return apiError(401, 'missing_token');
      const token = auth.replace(/^Bearer /, '');
      if (ended) return apiError(401, 'token_revoked');
      if (token !== current.access) return apiError(401, 'invalid_token');
      if (clock.now >= current.accessExpiresAt) return apiError(401, 'token_expired');
      if (url.pathname === '/v1/me' && method === 'PATCH') {
        const body = JSON.parse(String(init.body)) as { display_name: string };
        return json(200, { user: user(body.display_name) });
      }
      if (url.pathname === '/v1/me') return json(200, { user: user(''), devices: [] });
      if (url.pathname === '/v1/auth/logout') return json(204, undefined);
      return apiError(404, 'not_found');
    },
  };
  return gw;
}

export const PROFILE_IDS = {
  userId: '0193c2a0-0000-7000-8000-00000000a11c',
  deviceId: '0193c2a0-0000-7000-8000-0000000d0001',
};

function user(displayName: string) {
  return {
    user_id: PROFILE_IDS.userId,
    username: 'alice',
    display_name: displayName,
    identity_key: 'A'.repeat(43),
    identity_key_changed_at: '',
    created_at: '2025-11-25T00:00:00.000Z',
  };
}

function tokensJson(t: { access: string; refresh: string; accessExpiresAt: number }, now: number) {
  return {
    access_token: t.access,
    access_token_expires_at: new Date(t.accessExpiresAt).toISOString(),
    refresh_token: t.refresh,
    refresh_token_expires_at: new Date(now + 30 * 86_400_000).toISOString(),
    token_type: 'Bearer',
    session_id: 'session-1',
  };
}

/** A syntactically valid profile with placeholder keys (the session tests never use them). */
export function fakeProfile(tokens: { access: string; refresh: string; accessExpiresAt: number }, receivedAt: number): StoredProfile {
  return {
    version: 1,
    userId: PROFILE_IDS.userId,
    username: 'alice',
    deviceId: PROFILE_IDS.deviceId,
    deviceName: 'laptop',
    identityKey: 'A'.repeat(43),
    identitySeed: null,
    deviceKeys: { version: 1, encryption_key_pkcs8: 'AAAA', signing_key_seed: 'A'.repeat(43) },
    tokens: {
      accessToken: tokens.access,
      accessTokenExpiresAt: tokens.accessExpiresAt,
      refreshToken: tokens.refresh,
      refreshTokenExpiresAt: receivedAt + 30 * 86_400_000,
      sessionId: 'session-1',
      receivedAt,
    },
    pins: { version: 1, pins: {} },
  };
}
