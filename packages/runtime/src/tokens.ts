// The access-token contract shared by identity (issuer) and the gateway
// (verifier), and the revocation list that makes a revoked session, device or
// account stop working at once, before its short-lived token expires.
import type { Redis } from 'ioredis';

export const ACCESS_TOKEN_ISSUER = 'bil-identity';
export const ACCESS_TOKEN_AUDIENCE = 'bil-api';
export const ACCESS_TOKEN_ALG = 'EdDSA';

/** Claims of a bil access token (JWT, EdDSA). */
export interface AccessClaims {
  /** User id. */
  sub: string;
  /** Device id. */
  did: string;
  /** Session id. */
  sid: string;
  iat: number;
  exp: number;
  jti: string;
}

/** Pub/sub channel (after the Redis prefix) on which revocations are announced as they are written. */
export const REVOCATIONS_CHANNEL = 'revocations';

/** The Redis key (before the prefix) of one revocation. */
export function revocationKey(kind: 'session' | 'device' | 'user', id: string): string {
  return `revoked:${kind}:${id}`;
}

/**
 * Revocations live in Redis for as long as a token issued before them could
 * still be valid (the access-token lifetime plus clock skew), and are
 * announced on REVOCATIONS_CHANNEL in the same MULTI (the gateway's
 * LiveRevocations mirrors them in memory). `isRevoked` checks all three keys
 * with one MGET.
 */
export class RevocationList {
  constructor(
    private readonly redis: Redis,
    /** Seconds a revocation must outlive the tokens it kills. */
    private readonly ttlSeconds: number,
  ) {}

  async revoke(kind: 'session' | 'device' | 'user', ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const keys = ids.map((id) => revocationKey(kind, id));
    const m = this.redis.multi();
    for (const key of keys) m.set(key, '1', 'EX', this.ttlSeconds);
    // ioredis prefixes keys, not channels.
    m.publish(`${this.redis.options.keyPrefix ?? ''}${REVOCATIONS_CHANNEL}`, JSON.stringify({ keys, ttlSeconds: this.ttlSeconds }));
    const results = await m.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }

  async isRevoked(claims: Pick<AccessClaims, 'sub' | 'did' | 'sid'>): Promise<boolean> {
    const hits = await this.redis.mget(revocationKey('session', claims.sid), revocationKey('device', claims.did), revocationKey('user', claims.sub));
    return hits.some((v) => v !== null);
  }
}
