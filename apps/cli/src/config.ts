// Where profiles live and which server a command talks to (docs/cli.md
// "Profiles"). A profile is one device of one account: a directory holding
// the encrypted key store (keys.json, @bil/sdk's FileKeyStore format), the
// server address it was created against (settings.json, not secret) and a
// lock while a bil process uses it.
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { usage } from './errors.js';

export const DEFAULT_URL = 'http://localhost:8080';
export const DEFAULT_PROFILE = 'default';
const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

type Env = Record<string, string | undefined>;

/** `BIL_CONFIG_DIR`, else `$XDG_CONFIG_HOME/bil`, else `~/.config/bil`. */
export function configDir(env: Env = process.env, home: string = homedir()): string {
  if (env.BIL_CONFIG_DIR) return env.BIL_CONFIG_DIR;
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'bil');
  return join(home, '.config', 'bil');
}

export function checkProfileName(name: string): string {
  if (!PROFILE_NAME.test(name)) throw usage(`invalid profile name "${name}": use letters, digits, ".", "_" or "-" (at most 64, starting with a letter or digit)`);
  return name;
}

/** Checks and normalises a server address (http or https, no trailing slash). */
export function checkUrl(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw usage(`invalid server URL "${value}"`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usage(`invalid server URL "${value}": expected http:// or https://`);
  return u.toString().replace(/\/+$/, '');
}

/**
 * The server: `--url`, else `BIL_URL`, else the address the profile was
 * created against, else http://localhost:8080.
 */
export function resolveUrl(flag: string | undefined, env: Env, saved: string | undefined): string {
  return checkUrl(flag || env.BIL_URL || saved || DEFAULT_URL);
}

export interface ProfilePaths {
  readonly name: string;
  readonly dir: string;
  readonly keys: string;
  readonly settings: string;
  readonly lock: string;
  /** An unfinished registration (the account exists, this device is not registered yet): username, user id, server. */
  readonly pending: string;
}

export function profilePaths(root: string, name: string): ProfilePaths {
  const dir = join(root, 'profiles', checkProfileName(name));
  return { name, dir, keys: join(dir, 'keys.json'), settings: join(dir, 'settings.json'), lock: join(dir, 'lock'), pending: join(dir, 'register.json') };
}

export interface ProfileSettings {
  /** The server the profile's device is registered on. */
  url?: string;
}

export async function readSettings(paths: ProfilePaths): Promise<ProfileSettings> {
  try {
    const value = JSON.parse(await readFile(paths.settings, 'utf8')) as unknown;
    if (typeof value !== 'object' || value === null) return {};
    const url = (value as { url?: unknown }).url;
    return typeof url === 'string' ? { url } : {};
  } catch {
    return {};
  }
}

export async function writeSettings(paths: ProfilePaths, settings: ProfileSettings): Promise<void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await writeFile(paths.settings, `${JSON.stringify(settings, null, 2)}\n`, { mode: 0o600 });
}

/** The profiles in a config directory, by name. */
export async function listProfiles(root: string): Promise<string[]> {
  try {
    const entries = await readdir(join(root, 'profiles'), { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && PROFILE_NAME.test(e.name)).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

/** A registration whose account was created but whose first device was not (`bil register` resumes it). */
export interface PendingRegistration {
  readonly username: string;
  readonly userId: string;
  readonly url: string;
}

export async function readPending(paths: ProfilePaths): Promise<PendingRegistration | null> {
  try {
    const v = JSON.parse(await readFile(paths.pending, 'utf8')) as Partial<PendingRegistration> | null;
    if (v && typeof v.username === 'string' && typeof v.userId === 'string' && typeof v.url === 'string') return { username: v.username, userId: v.userId, url: v.url };
    return null;
  } catch {
    return null;
  }
}

export async function writePending(paths: ProfilePaths, pending: PendingRegistration): Promise<void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await writeFile(paths.pending, `${JSON.stringify(pending, null, 2)}\n`, { mode: 0o600 });
}

export async function removePending(paths: ProfilePaths): Promise<void> {
  await rm(paths.pending, { force: true });
}
