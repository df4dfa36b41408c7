// `node dist/main.js service-key`: the public half of the service identity key
// (what clients configure, docs/deploy.md "Publishing the digest service key")
// and its fingerprint, from DIGEST_SERVICE_IDENTITY_SEED, or the public
// development seed outside production. Needs nothing but the environment.
import { createHash } from 'node:crypto';
import { fromBase64Url, identityKeyFromSeed, serviceKeyFingerprint, toBase64Url } from '@bil/crypto';
import { ConfigError } from '@bil/runtime';
import { DEV_IDENTITY_SEED } from './config.js';

export interface ServiceKey {
  /** Ed25519 public key, 32 bytes base64url (no padding). */
  key: string;
  /** SHA-256 of the 32 key bytes, the first 16 bytes as 32 hex digits in groups of 4 (as the CLI shows it). */
  fingerprint: string;
  /** The full SHA-256 of the key bytes, hex. */
  sha256: string;
  /** True when the public development seed was used. */
  development: boolean;
}

export function fingerprintOf(key: string): { fingerprint: string; sha256: string } {
  const sha256 = createHash('sha256').update(fromBase64Url(key, 32)).digest('hex');
  return { sha256, fingerprint: serviceKeyFingerprint(key) };
}

export function serviceKey(config: { NODE_ENV: string; DIGEST_SERVICE_IDENTITY_SEED?: string | undefined }): ServiceKey {
  const seed = config.DIGEST_SERVICE_IDENTITY_SEED;
  if (!seed && config.NODE_ENV === 'production') throw new ConfigError(['DIGEST_SERVICE_IDENTITY_SEED is required in production (docs/digest.md, "Keys")']);
  const key = toBase64Url(identityKeyFromSeed(fromBase64Url(seed ?? DEV_IDENTITY_SEED, 32)).publicKey);
  return { key, ...fingerprintOf(key), development: !seed };
}

/** What the command prints: the key on the first line (for scripts: `… service-key | head -1`), then the fingerprint. */
export function serviceKeyText(k: ServiceKey): string {
  return [
    k.key,
    `fingerprint ${k.fingerprint}`,
    `sha256 ${k.sha256}`,
    k.development ? 'development key (DIGEST_SERVICE_IDENTITY_SEED is not set): public, never use it for real users' : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/** With DIGEST_SERVICE_IDENTITY_KEY set (the published key), a seed that does not match it stops the process at start. */
export function checkPublishedKey(config: { DIGEST_SERVICE_IDENTITY_KEY?: string | undefined }, actualKey: string): void {
  const published = config.DIGEST_SERVICE_IDENTITY_KEY;
  if (published && published !== actualKey) {
    throw new ConfigError([
      'DIGEST_SERVICE_IDENTITY_SEED does not belong to the published DIGEST_SERVICE_IDENTITY_KEY (clients would refuse every digest): check the digest Secret and digest.serviceIdentityKey',
    ]);
  }
}
