// The profile's key store with the CLI's own data inside it: the usernames of
// users this profile looked up (the API finds users by name only, so names
// shown for ids come from here). It rides in the SDK's encrypted profile as
// the extra member `cli` (the SDK keeps unknown members when it rewrites the
// profile), so nothing about contacts is on disk in the clear either.
import type { KeyStore, StoredProfile } from '@bil/sdk';

export interface CliData {
  /** userId → username. */
  readonly names: Record<string, string>;
}

const empty = (): CliData => ({ names: {} });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function parseCliData(value: unknown): CliData {
  const names: Record<string, string> = {};
  const raw = (value as { names?: unknown } | null | undefined)?.names;
  if (typeof raw === 'object' && raw !== null) {
    for (const [id, name] of Object.entries(raw)) if (UUID.test(id) && typeof name === 'string' && name) names[id] = name;
  }
  return { names };
}

type WithCli = StoredProfile & { cli?: unknown };

export class CliKeyStore implements KeyStore {
  readonly #inner: KeyStore;
  #data: CliData = empty();
  #last: StoredProfile | null = null;

  constructor(inner: KeyStore) {
    this.#inner = inner;
  }

  async load(): Promise<StoredProfile | null> {
    const p = (await this.#inner.load()) as WithCli | null;
    this.#last = p;
    this.#data = parseCliData(p?.cli);
    return p;
  }

  save(profile: StoredProfile): Promise<void> {
    this.#last = profile;
    return this.#inner.save({ ...profile, cli: this.#data } as WithCli);
  }

  clear(): Promise<void> {
    this.#last = null;
    this.#data = empty();
    return this.#inner.clear();
  }

  get data(): CliData {
    return this.#data;
  }

  /** Remembers usernames (saved with the profile at once if there is one). */
  async rememberNames(names: Record<string, string>): Promise<void> {
    const changed = Object.entries(names).some(([id, n]) => this.#data.names[id] !== n);
    if (!changed) return;
    this.#data = { names: { ...this.#data.names, ...names } };
    if (this.#last) await this.save(this.#last);
  }
}
