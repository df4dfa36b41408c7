// Members' signed digest consents (docs/protocol.md "Digest consent"): each
// statement the server lists is verified against the signing key of one of
// that member's verified devices, and the highest version seen is pinned per
// (chat, member) in the profile, so a server that later strips a statement,
// or serves an older one, changes nothing: the pinned one counts.
import { parseDigestConsent, signDigestConsent, verifyDigestConsent, type LocalDevice, type VerifiedDevice } from '@bil/crypto';
import { apiCode } from '../chat/retry.js';
import type { StoredDigestState } from '../key-store.js';
import type { DigestPolicyJson } from '@bil/proto/rest-digest';

export interface ConsentDeps {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  me(): Promise<LocalDevice>;
  /** A user's verified devices (certified by the pinned identity key, in their latest signed list). */
  devices(userId: string): Promise<{ devices: readonly VerifiedDevice[] }>;
  /** The digest part of the profile, and writing it back. */
  state(): Promise<StoredDigestState>;
  save(patch: Partial<StoredDigestState>): Promise<void>;
  now(): number;
}

export type PinnedConsent = { readonly version: number; readonly include: boolean };

/** The server's chat policy answer (GET /v1/chats/{id}/digest-policy), as far as the client reads it. */
export interface PolicyAnswer {
  /** As the schema describes it, except the consents: untrusted statements, each verified before it counts. */
  policy: Pick<DigestPolicyJson, 'chat_id' | 'enabled'> & { consents?: unknown };
}

const enc = encodeURIComponent;
/** At most this many statements are looked at per answer (a server can't make the client verify without end). */
const MAX_STATEMENTS = 1000;

export class ConsentBook {
  constructor(private readonly deps: ConsentDeps) {}

  /** The pinned consents of a chat, by user id. */
  async pinned(chatId: string): Promise<Record<string, PinnedConsent>> {
    return (await this.deps.state()).consents?.[chatId] ?? {};
  }

  /**
   * Verifies the statements of a policy answer that are newer than the pins,
   * pins those that verify, and returns the pins. `relevant`, when given,
   * limits the work to those users (the senders about to be summarised).
   */
  async update(chatId: string, statements: unknown, relevant?: ReadonlySet<string>): Promise<Record<string, PinnedConsent>> {
    const pinned = { ...(await this.pinned(chatId)) };
    let changed = false;
    const list = Array.isArray(statements) ? statements.slice(0, MAX_STATEMENTS) : [];
    // One directory lookup per member per answer, however many statements name them.
    const devicesOf = new Map<string, Promise<readonly VerifiedDevice[]>>();
    for (const statement of list) {
      let p: ReturnType<typeof parseDigestConsent>;
      try {
        p = parseDigestConsent(statement);
      } catch {
        continue; // not a statement: it counts for nothing
      }
      if (p.chat_id !== chatId || (relevant && !relevant.has(p.user_id))) continue;
      const known = pinned[p.user_id];
      if (known && known.version >= p.version) continue; // older or the same: the pin stands
      if (!devicesOf.has(p.user_id)) {
        devicesOf.set(
          p.user_id,
          this.deps.devices(p.user_id).then(
            (d) => d.devices,
            () => [] as readonly VerifiedDevice[],
          ),
        );
      }
      const devices = await devicesOf.get(p.user_id)!;
      const device = devices.find((d) => d.deviceId === p.device_id);
      if (!device) continue; // not signed by a device of theirs this client verified
      const ok = await verifyDigestConsent({ consent: statement, chatId, userId: p.user_id, signingKey: device.signingKey }).then(
        () => true,
        () => false,
      );
      if (!ok) continue;
      pinned[p.user_id] = { version: p.version, include: p.include };
      changed = true;
    }
    if (changed) await this.#savePins(chatId, pinned);
    return pinned;
  }

  /** Users whose pinned consent says "leave my messages out". */
  static excluded(pins: Record<string, PinnedConsent>): Set<string> {
    return new Set(Object.entries(pins).filter(([, c]) => !c.include).map(([userId]) => userId));
  }

  /**
   * Signs this user's consent for a chat (a version above any this device
   * pinned), pins it here first (this device follows its user's intent even
   * if the server drops it), then stores it at the service. A `consent_stale`
   * answer (another device of the account signed a higher version) is met by
   * reading the server's statements and signing above them, once.
   */
  async set(chatId: string, include: boolean): Promise<{ include: boolean; version: number }> {
    if (typeof include !== 'boolean') throw new TypeError('include: expected a boolean');
    const me = await this.deps.me();
    for (let attempt = 1; ; attempt++) {
      const mine = (await this.pinned(chatId))[me.userId];
      const now = this.deps.now();
      const version = Math.max(now, (mine?.version ?? 0) + 1);
      const consent = signDigestConsent({ chatId, device: me, include, version, createdAt: now });
      await this.#savePins(chatId, { ...(await this.pinned(chatId)), [me.userId]: { version, include } });
      try {
        await this.deps.call('PUT', `/v1/chats/${enc(chatId)}/digest-consent`, { consent });
        return { include, version };
      } catch (err) {
        if (apiCode(err) !== 'consent_stale' || attempt >= 2) throw err;
        const answer = await this.deps.call<PolicyAnswer>('GET', `/v1/chats/${enc(chatId)}/digest-policy`);
        await this.update(chatId, answer.policy?.consents, new Set([me.userId]));
      }
    }
  }

  async #savePins(chatId: string, pins: Record<string, PinnedConsent>): Promise<void> {
    const state = await this.deps.state();
    await this.deps.save({ consents: { ...(state.consents ?? {}), [chatId]: pins } });
  }
}
