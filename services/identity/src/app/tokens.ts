// Access tokens (JWT, EdDSA/Ed25519, via jose) and opaque refresh tokens.
// Refresh token: `bil_rt.<session id>.<generation>.<32 random bytes b64url>`;
// only SHA-256 of the secret part is stored.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomUUID, timingSafeEqual, type KeyObject } from 'node:crypto';
import { SignJWT, calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { ACCESS_TOKEN_ALG, ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, invalidArgument } from '@bil/runtime';

export interface IssuedAccessToken {
  token: string;
  expiresAt: Date;
}

export class TokenSigner {
  private constructor(
    private readonly privateKey: KeyObject,
    readonly kid: string,
    private readonly jwks: { keys: JWK[] },
    readonly accessTtlSeconds: number,
  ) {}

  /**
   * @param privatePem PKCS8 PEM of an Ed25519 key; when absent a key is made
   *   for this process only (development: tokens die with the process).
   * @param previousPublicPems public keys still accepted during a rotation.
   */
  static async create(privatePem: string | undefined, previousPublicPems: string[], accessTtlSeconds: number): Promise<TokenSigner> {
    const privateKey = privatePem ? createPrivateKey(privatePem) : generateKeyPairSync('ed25519').privateKey;
    if (privateKey.asymmetricKeyType !== 'ed25519') throw invalidArgument('invalid_jwt_key', 'the JWT signing key must be Ed25519');
    const publicJwks = await Promise.all(
      [createPublicKey(privateKey), ...previousPublicPems.map((p) => createPublicKey(p))].map(async (k) => {
        const jwk = await exportJWK(k);
        return { ...jwk, kid: await calculateJwkThumbprint(jwk), alg: ACCESS_TOKEN_ALG, use: 'sig' };
      }),
    );
    return new TokenSigner(privateKey, publicJwks[0]!.kid, { keys: publicJwks }, accessTtlSeconds);
  }

  jwksJson(): string {
    return JSON.stringify(this.jwks);
  }

  async issue(claims: { userId: string; deviceId: string; sessionId: string }, now = new Date()): Promise<IssuedAccessToken> {
    const iat = Math.floor(now.getTime() / 1000);
    const exp = iat + this.accessTtlSeconds;
    const token = await new SignJWT({ did: claims.deviceId, sid: claims.sessionId })
      .setProtectedHeader({ alg: ACCESS_TOKEN_ALG, kid: this.kid, typ: 'at+jwt' })
      .setSubject(claims.userId)
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(ACCESS_TOKEN_AUDIENCE)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.privateKey);
    return { token, expiresAt: new Date(exp * 1000) };
  }
}

export interface RefreshToken {
  token: string;
  hash: string;
}

export function sha256(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

export function newRefreshToken(sessionId: string, generation: number): RefreshToken {
  const secret = randomBytes(32).toString('base64url');
  return { token: `bil_rt.${sessionId}.${generation}.${secret}`, hash: sha256(secret) };
}

export interface ParsedRefreshToken {
  sessionId: string;
  generation: number;
  secret: string;
}

const REFRESH = /^bil_rt\.([0-9a-f-]{36})\.(\d{1,9})\.([A-Za-z0-9_-]{43})$/;

export function parseRefreshToken(token: unknown): ParsedRefreshToken | null {
  if (typeof token !== 'string' || token.length > 128) return null;
  const m = REFRESH.exec(token);
  if (!m) return null;
  return { sessionId: m[1]!, generation: Number(m[2]), secret: m[3]! };
}

export function hashMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(sha256(secret));
  const b = Buffer.from(storedHash);
  return a.length === b.length && timingSafeEqual(a, b);
}
