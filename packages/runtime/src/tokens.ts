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

/**
 * Revocations live in Redis for as long as a token issued before them could
 * still be valid (the access-token lifetime plus clock skew). The gateway
 * checks all three keys with one MGET per request.
 */
export class RevocationList {
  constructor(
    private readonly redis: Redis,
    /** Seconds a revocation must outlive the tokens it kills. */
    private readonly ttlSeconds: number,
  ) {}

  private key(kind: 'session' | 'device' | 'user', id: string): string {
    return `revoked:${kind}:${id}`;
  }

  async revoke(kind: 'session' | 'device' | 'user', ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const m = this.redis.multi();
    for (const id of ids) m.set(this.key(kind, id), '1', 'EX', this.ttlSeconds);
    await m.exec();
  }

  async isRevoked(claims: Pick<AccessClaims, 'sub' | 'did' | 'sid'>): Promise<boolean> {
    const hits = await this.redis.mget(
      this.key('session', claims.sid),
      this.key('device', claims.did),
      this.key('user', claims.sub),
    );
    return hits.some((v) => v !== null);
  }
}
