// What this machine knows about servers, apart from any profile:
// `<config dir>/servers.json`, `{"<server url>": {"digest_service_key": "…"}}`.
// The digest service's identity key (Ed25519, base64url) is configuration a
// client brings, never the server's word (docs/digest.md "Keys"): `npm start`
// writes the development key here, an operator publishes a production one
// (docs/deploy.md) and a person sets it with `bil digest key set`. Not secret.
// scripts/start.mjs and scripts/demo.mjs use this module too (from dist/), so
// all three agree on the file, its place and the fingerprint.
import { randomBytes } from 'node:crypto';
import { serviceKeyFingerprint } from '@bil/sdk';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkUrl } from './config.js';
import { CliError, ExitCode, usage } from './errors.js';

export const SERVERS_FILE = 'servers.json';

type Env = Record<string, string | undefined>;

export interface ServerEntry {
  /** The digest service identity key (Ed25519 public key, 32 bytes base64url). */
  digest_service_key?: string;
  [other: string]: unknown;
}

export type Servers = Record<string, ServerEntry>;

export const serversPath = (root: string): string => join(root, SERVERS_FILE);

const KEY = /^[A-Za-z0-9_-]{43}$/;

/** Checks a digest service identity key: an Ed25519 public key, 32 bytes in base64url without padding. */
export function checkDigestKey(value: string, from = 'the digest key'): string {
  const key = value.trim();
  if (!KEY.test(key) || Buffer.from(key, 'base64url').length !== 32) {
    throw usage(`${from} is not an Ed25519 public key (32 bytes in base64url, 43 characters)`, 'the operator publishes it; for npm start it is printed at start');
  }
  return key;
}

/** The fingerprint people compare (@bil/crypto `serviceKeyFingerprint`), of a key checked first. */
export function digestKeyFingerprint(key: string): string {
  return serviceKeyFingerprint(checkDigestKey(key));
}

/** servers.json, or `{}` when there is none. A file that is not a JSON object is an error (it is never silently ignored). */
export async function readServers(root: string): Promise<Servers> {
  const file = serversPath(root);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError('config_unreadable', `cannot read ${file}: ${(err as Error).message}`, ExitCode.error);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CliError('config_unreadable', `${file} is not a JSON object`, ExitCode.error, 'fix or delete it (npm start and bil digest key set write it again)');
  }
  const out: Servers = {};
  for (const [url, entry] of Object.entries(value)) if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) out[url] = entry as ServerEntry;
  return out;
}

function sameServer(a: string, b: string): boolean {
  try {
    return checkUrl(a) === checkUrl(b);
  } catch {
    return false;
  }
}

/** The entry for a server (its URL compared normalised: no trailing slash, lower-case host). */
export function serverEntry(servers: Servers, url: string): ServerEntry | undefined {
  const exact = servers[url];
  if (exact) return exact;
  const key = Object.keys(servers).find((k) => sameServer(k, url));
  return key === undefined ? undefined : servers[key];
}

/** Merges `entry` into each URL's entry and writes the file atomically (mode 0600; the directory 0700). */
export async function updateServers(root: string, urls: readonly string[], entry: ServerEntry): Promise<void> {
  const servers = await readServers(root);
  for (const raw of urls) {
    const url = checkUrl(raw);
    const existing = Object.keys(servers).find((k) => sameServer(k, url));
    if (existing !== undefined && existing !== url) {
      servers[url] = servers[existing]!;
      delete servers[existing];
    }
    servers[url] = { ...servers[url], ...entry };
  }
  await mkdir(root, { recursive: true, mode: 0o700 });
  const file = serversPath(root);
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(servers, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export type DigestKeySource = 'flag' | 'env' | 'servers';

export interface ResolvedDigestKey {
  readonly key: string;
  readonly source: DigestKeySource;
  /** Where it came from, for people: `--digest-key`, `BIL_DIGEST_SERVICE_KEY` or the file. */
  readonly from: string;
}

/**
 * The digest service identity key for `url`: `--digest-key`, else
 * `BIL_DIGEST_SERVICE_KEY`, else servers.json's entry for the server; null
 * when none is configured. A malformed key is a usage error wherever it is.
 */
export function resolveDigestKey(flag: string | undefined, env: Env, servers: Servers, url: string, file = SERVERS_FILE): ResolvedDigestKey | null {
  if (flag !== undefined && flag !== '') return { key: checkDigestKey(flag, '--digest-key'), source: 'flag', from: '--digest-key' };
  const fromEnv = env.BIL_DIGEST_SERVICE_KEY;
  if (fromEnv !== undefined && fromEnv !== '') return { key: checkDigestKey(fromEnv, 'BIL_DIGEST_SERVICE_KEY'), source: 'env', from: 'BIL_DIGEST_SERVICE_KEY' };
  const stored = serverEntry(servers, url)?.digest_service_key;
  if (stored === undefined) return null;
  if (typeof stored !== 'string') throw usage(`the digest key for ${url} in ${file} is not a string`);
  return { key: checkDigestKey(stored, `the digest key for ${url} in ${file}`), source: 'servers', from: file };
}
