// The profile's key store with the CLI's own data inside it: the usernames of
// users this profile looked up (the API finds users by name only, so names
// shown for ids come from here) and digests that timed out, to resume (the
// SDK's JSON `pending`, keyed by request id). It rides in the SDK's encrypted profile as
// the extra member `cli` (the SDK keeps unknown members when it rewrites the
// profile), so nothing about contacts is on disk in the clear either.
import type { KeyStore, StoredProfile } from '@bil/sdk';

export interface CliData {
  /** userId → username. */
  readonly names: Record<string, string>;
  /** request id → the SDK's pending digest (DigestFailedError.pending), kept until resumed. */
  readonly pendingDigests: Record<string, unknown>;
}

const empty = (): CliData => ({ names: {}, pendingDigests: {} });
const REQUEST_ID = /^[A-Za-z0-9_-]{1,128}$/;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function parseCliData(value: unknown): CliData {
  const names: Record<string, string> = {};
  const raw = (value as { names?: unknown } | null | undefined)?.names;
  if (typeof raw === 'object' && raw !== null) {
    for (const [id, name] of Object.entries(raw)) if (UUID.test(id) && typeof name === 'string' && name) names[id] = name;
  }
  const pendingDigests: Record<string, unknown> = {};
  const rawPending = (value as { pendingDigests?: unknown } | null | undefined)?.pendingDigests;
  if (typeof rawPending === 'object' && rawPending !== null) {
    for (const [id, p] of Object.entries(rawPending)) if (REQUEST_ID.test(id) && typeof p === 'object' && p !== null) pendingDigests[id] = p;
  }
  return { names, pendingDigests };
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
    this.#data = { ...this.#data, names: { ...this.#data.names, ...names } };
    if (this.#last) await this.save(this.#last);
  }

  /** Keeps a timed-out digest to resume (`bil digest --resume <request id>`), encrypted with the profile. */
  async savePendingDigest(requestId: string, pending: unknown): Promise<void> {
    if (!REQUEST_ID.test(requestId)) throw new Error(`unexpected digest request id ${JSON.stringify(requestId)}`);
    this.#data = { ...this.#data, pendingDigests: { ...this.#data.pendingDigests, [requestId]: JSON.parse(JSON.stringify(pending)) as unknown } };
    if (this.#last) await this.save(this.#last);
  }

  async removePendingDigest(requestId: string): Promise<void> {
    if (!(requestId in this.#data.pendingDigests)) return;
    const { [requestId]: _gone, ...rest } = this.#data.pendingDigests;
    this.#data = { ...this.#data, pendingDigests: rest };
    if (this.#last) await this.save(this.#last);
  }
}
