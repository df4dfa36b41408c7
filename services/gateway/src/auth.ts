// The gateway checks every request's access token locally with the verifier
// shared with delivery (packages/runtime/src/access-token.ts): identity's JWKS,
// EdDSA only, issuer/audience/expiry, then the revocation list.
export { AccessTokenVerifier, JwksCache, bearerToken, parseJwks, type RevocationChecker, type VerifiedActor } from '@bil/runtime';
