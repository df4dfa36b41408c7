// Access tokens checked locally by every service that faces clients (the
// gateway on each request, delivery at the WebSocket upgrade and on in-band
// refresh): the signature with identity's published keys (JWKS, cached;
// refetched when an unknown key id shows up, at most once per interval),
// EdDSA only, issuer, audience, expiry and the bil claims; then one Redis MGET
// against the revocation list, so a revoked session, device or account stops
// working at once.
import { createLocalJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWK } from 'jose';
import { AppError } from './errors.js';
import { ACCESS_TOKEN_ALG, ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, type AccessClaims } from './tokens.js';

/** The signed-in device a request acts for. */
export interface VerifiedActor {
  userId: string;
  deviceId: string;
  sessionId: string;
  /** When the token expires, ms since the Unix epoch (a live socket is closed then unless refreshed). */
  expiresAt: number;
}

/** Checks whether any of a token's session, device or user was revoked. */
export interface RevocationChecker {
  isRevoked(claims: Pick<AccessClaims, 'sub' | 'did' | 'sid'>): Promise<boolean>;
}

const unauthenticated = (code: string, message: string) => new AppError('unauthenticated', code, message);

const MAX_TOKEN_LENGTH = 4096;
/** RFC 6750 §2.1 b64token, restricted to what a compact JWS can contain. */
const BEARER = /^Bearer +([A-Za-z0-9_.~+/-]+=*) *$/i;

/** The token of an `Authorization: Bearer …` header. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') {
    throw unauthenticated('missing_token', 'an access token is required (Authorization: Bearer <token>)');
  }
  if (!/^bearer(\s|$)/i.test(header.trimStart())) {
    throw unauthenticated('missing_token', 'an access token is required (Authorization: Bearer <token>)');
  }
  const m = BEARER.exec(header.trim());
  if (!m?.[1] || m[1].length > MAX_TOKEN_LENGTH) throw unauthenticated('invalid_token', 'the access token is malformed');
  return m[1];
}

type KeySet = ReturnType<typeof createLocalJWKSet>;

export interface JwksCacheOptions {
  /** Fetches the JWK Set as JSON text (identity's GetJwks). */
  fetch: () => Promise<string>;
  /** Shortest time between fetches caused by an unknown key id. */
  minRefreshIntervalMs: number;
  /** Age after which a request triggers a background refresh. */
  maxAgeMs?: number;
  now?: () => number;
}

/** Identity's verification keys, fetched on first use and on key rotation. */
export class JwksCache {
  private keySet: KeySet | undefined;
  private kids = new Set<string>();
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: JwksCacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Number of fetches attempted; for tests and metrics. */
  fetches = 0;

  /** The key set to verify a token whose header names `kid`. */
  async forKid(kid: string): Promise<KeySet> {
    if (!this.keySet) {
      await this.refresh();
    } else if (!this.kids.has(kid) && this.now() - this.fetchedAt >= this.opts.minRefreshIntervalMs) {
      await this.refresh().catch(() => undefined);
    } else if (this.now() - this.fetchedAt >= (this.opts.maxAgeMs ?? 10 * 60_000)) {
      void this.refresh().catch(() => undefined);
    }
    if (!this.keySet) throw new AppError('unavailable', 'service_unavailable', 'token keys are not available, try again');
    return this.keySet;
  }

  /** Resolves once a key set is held, fetching one if none is (readiness: tokens can be checked without identity). */
  async load(): Promise<void> {
    if (!this.keySet) await this.refresh();
  }

  private refresh(): Promise<void> {
    this.inflight ??= (async () => {
      this.fetches += 1;
      // Failed fetches count too, so an outage can't turn every request into a fetch.
      this.fetchedAt = this.now();
      try {
        const jwks = parseJwks(await this.opts.fetch());
        this.keySet = createLocalJWKSet(jwks);
        this.kids = new Set(jwks.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }
}

/** Parses a JWK Set, keeping only Ed25519 public keys (the only kind identity signs with). */
export function parseJwks(text: string): JSONWebKeySet {
  const data = JSON.parse(text) as unknown;
  if (typeof data !== 'object' || data === null || !Array.isArray((data as { keys?: unknown }).keys)) {
    throw new Error('not a JWK Set');
  }
  const keys = ((data as { keys: unknown[] }).keys as JWK[]).filter(
    (k) =>
      typeof k === 'object' &&
      k !== null &&
      k.kty === 'OKP' &&
      k.crv === 'Ed25519' &&
      (k.alg === undefined || k.alg === ACCESS_TOKEN_ALG || k.alg === 'Ed25519') &&
      k.d === undefined,
  );
  return { keys };
}

export interface AccessTokenVerifierOptions {
  jwks: JwksCache;
  revocations: RevocationChecker;
  /** Seconds of clock difference tolerated on exp/nbf/iat. */
  clockToleranceSeconds?: number;
}

export class AccessTokenVerifier {
  constructor(private readonly opts: AccessTokenVerifierOptions) {}

  /** Verifies an access token and returns its actor; throws a 401 AppError otherwise. */
  async verify(token: string): Promise<VerifiedActor> {
    let kid: string;
    try {
      const header = decodeProtectedHeader(token);
      if (header.alg !== ACCESS_TOKEN_ALG || typeof header.kid !== 'string' || header.kid === '') throw new Error('bad header');
      kid = header.kid;
    } catch {
      throw unauthenticated('invalid_token', 'the access token is invalid');
    }
    const keySet = await this.opts.jwks.forKid(kid);
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keySet, {
        algorithms: [ACCESS_TOKEN_ALG],
        issuer: ACCESS_TOKEN_ISSUER,
        audience: ACCESS_TOKEN_AUDIENCE,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: this.opts.clockToleranceSeconds ?? 5,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw unauthenticated('token_expired', 'the access token has expired');
      throw unauthenticated('invalid_token', 'the access token is invalid');
    }
    const { sub, did, sid, exp } = payload;
    if (!isId(sub) || !isId(did) || !isId(sid)) throw unauthenticated('invalid_token', 'the access token is invalid');

    let revoked: boolean;
    try {
      revoked = await this.opts.revocations.isRevoked({ sub, did, sid });
    } catch {
      throw new AppError('unavailable', 'service_unavailable', 'a backend service is unavailable, try again');
    }
    if (revoked) throw unauthenticated('token_revoked', 'the access token has been revoked');
    return { userId: sub, deviceId: did, sessionId: sid, expiresAt: typeof exp === 'number' ? exp * 1000 : 0 };
  }
}

function isId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 128;
}
