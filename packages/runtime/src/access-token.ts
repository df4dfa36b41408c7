// Access tokens checked locally by every service that faces clients (the
// gateway on each request, delivery at the WebSocket upgrade and on in-band
// refresh): the signature with identity's published keys (JWKS, cached;
// refetched when an unknown key id shows up, at most once per interval),
// EdDSA only, issuer, audience, expiry and the bil claims; then one Redis MGET
// against the revocation list, so a revoked session, device or account stops
// working at once. Verified with node:crypto (one synchronous Ed25519 verify
// against a cached KeyObject per key id): jose's async WebCrypto path cost
// ~15% of the gateway's CPU per request (issue 18). A token that verified is
// remembered (by its exact text, while its key is published), so the
// signature is checked once per token rather than once per request; expiry and
// revocation are checked on every request.
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import type { JSONWebKeySet, JWK } from 'jose';
import { AppError, type ErrorReason } from './errors.js';
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

const unauthenticated = (code: ErrorReason, message: string) => new AppError('unauthenticated', code, message);

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

/** Identity's verification keys by key id. */
export type KeySet = ReadonlyMap<string, KeyObject>;

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
        const keys = new Map<string, KeyObject>();
        for (const k of jwks.keys) {
          if (typeof k.kid !== 'string' || k.kid === '' || keys.has(k.kid)) continue;
          try {
            keys.set(k.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x } as never, format: 'jwk' }));
          } catch {
            // A malformed key is skipped, as jose skipped it; tokens naming it are refused.
          }
        }
        this.keySet = keys;
        this.kids = new Set(keys.keys());
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
  /** Tokens remembered as verified (signature and claims); 0 turns it off. Default 10,000. */
  verifiedCacheSize?: number;
}

interface Verified {
  kid: string;
  /** The key that verified it: the entry counts only while this very key is in the key set. */
  key: KeyObject;
  exp: number;
  sub: string;
  did: string;
  sid: string;
}

const invalid = () => unauthenticated('invalid_token', 'the access token is invalid');

/** A base64url segment of a compact JWS, decoded; throws on other characters. */
function b64url(part: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) throw new Error('not base64url');
  return Buffer.from(part, 'base64url');
}

function jsonObject(part: string): Record<string, unknown> {
  const v = JSON.parse(b64url(part).toString('utf8')) as unknown;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
  return v as Record<string, unknown>;
}

export class AccessTokenVerifier {
  /**
   * Tokens whose signature and claims already verified, by their exact text: a
   * client sends the same token on every request of its 15-minute life, so
   * the Ed25519 check runs once per token, not per request. Expiry and the
   * revocation list are still checked on every use, and an entry counts only
   * while the key that verified it is still published (rotation drops it).
   */
  private readonly verified = new Map<string, Verified>();

  constructor(private readonly opts: AccessTokenVerifierOptions) {}

  /**
   * Verifies an access token and returns its actor; throws a 401 AppError
   * otherwise. The checks jose made, in the same order: compact JWS with a
   * protected header naming EdDSA and a key id (no `crit` extensions), the
   * Ed25519 signature over `header.payload` with that key, then the claims:
   * issuer, audience (a string or a list holding ours), exp required and not
   * passed, nbf and iat numbers when present (nbf not in the future), sub, did
   * and sid ids; then the revocation list.
   */
  async verify(token: string): Promise<VerifiedActor> {
    const known = this.verified.get(token);
    if (known) {
      const keySet = await this.opts.jwks.forKid(known.kid);
      if (keySet.get(known.kid) === known.key) return this.admit(known);
      this.verified.delete(token);
    }
    const dot1 = token.indexOf('.');
    const dot2 = dot1 < 0 ? -1 : token.indexOf('.', dot1 + 1);
    if (dot1 <= 0 || dot2 < 0 || token.indexOf('.', dot2 + 1) !== -1) throw invalid();
    let kid: string;
    try {
      const header = jsonObject(token.slice(0, dot1));
      if (header.alg !== ACCESS_TOKEN_ALG || typeof header.kid !== 'string' || header.kid === '' || header.crit !== undefined || header.b64 !== undefined) {
        throw new Error('bad header');
      }
      kid = header.kid;
    } catch {
      throw invalid();
    }
    const keySet = await this.opts.jwks.forKid(kid);
    const key = keySet.get(kid);
    if (!key) throw invalid();
    let payload: Record<string, unknown>;
    try {
      const signature = b64url(token.slice(dot2 + 1));
      if (signature.length !== 64) throw new Error('bad signature length');
      if (!verifySignature(null, Buffer.from(token.slice(0, dot2), 'latin1'), key, signature)) throw new Error('bad signature');
      payload = jsonObject(token.slice(dot1 + 1, dot2));
    } catch {
      throw invalid();
    }
    const tolerance = this.opts.clockToleranceSeconds ?? 5;
    const now = Math.floor(Date.now() / 1000);
    const { iss, aud, exp, nbf, iat, sub, did, sid } = payload;
    if (iss !== ACCESS_TOKEN_ISSUER) throw invalid();
    if (!(aud === ACCESS_TOKEN_AUDIENCE || (Array.isArray(aud) && aud.includes(ACCESS_TOKEN_AUDIENCE)))) throw invalid();
    if (typeof exp !== 'number' || !Number.isFinite(exp)) throw invalid();
    if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf) || nbf > now + tolerance)) throw invalid();
    if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) throw invalid();
    if (sub === undefined) throw invalid();
    if (exp <= now - tolerance) throw unauthenticated('token_expired', 'the access token has expired');
    if (!isId(sub) || !isId(did) || !isId(sid)) throw invalid();

    const entry: Verified = { kid, key, exp, sub, did, sid };
    const size = this.opts.verifiedCacheSize ?? 10_000;
    if (size > 0) {
      if (this.verified.size >= size) this.verified.clear();
      this.verified.set(token, entry);
    }
    return this.admit(entry);
  }

  /** The checks made on every use, cached or not: expiry, then the revocation list. */
  private async admit(v: Verified): Promise<VerifiedActor> {
    const tolerance = this.opts.clockToleranceSeconds ?? 5;
    if (v.exp <= Math.floor(Date.now() / 1000) - tolerance) throw unauthenticated('token_expired', 'the access token has expired');
    let revoked: boolean;
    try {
      revoked = await this.opts.revocations.isRevoked({ sub: v.sub, did: v.did, sid: v.sid });
    } catch {
      throw new AppError('unavailable', 'service_unavailable', 'a backend service is unavailable, try again');
    }
    if (revoked) throw unauthenticated('token_revoked', 'the access token has been revoked');
    return { userId: v.sub, deviceId: v.did, sessionId: v.sid, expiresAt: v.exp * 1000 };
  }
}

function isId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 128;
}
