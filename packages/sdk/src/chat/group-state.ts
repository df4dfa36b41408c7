// A group as this device verified it: the chain of epoch records (checked
// against the hashes it verified before, so a fork is found and located), the
// members' identity keys checked against the pins, and the epoch keys it
// holds. Nothing here takes the server's word: records are signed, keys are
// committed to, and what can't be verified stops at the last verified epoch.
import {
  deviceRecordOf,
  epochRecordHash,
  extendGroupChain,
  openGroupMetadata,
  unwrapEpochKey,
  verifyGroupChain,
  type EpochKey,
  type GroupChain,
  type GroupMetadata,
  type SignedEpochRecord,
} from '@bil/crypto';
import { BilProtocolError, BilTrustError } from '../errors.js';
import type { StoredForkAlert } from '../key-store.js';
import type { EpochJson } from '../wire.js';
import { epochsPage, MAX_PAGES } from './answers.js';
import type { DeviceState } from './device-state.js';
import type { Directory } from './directory.js';
import type { ForkAlert } from './types.js';

export interface GroupState {
  readonly chain: GroupChain;
  /** This device's wrapped key per epoch (from the server), unwrapped on demand. */
  readonly wrapped: Map<number, string>;
  readonly keys: Map<number, EpochKey>;
  /** A member whose identity key in a newer record is not the pinned one: that record and later ones are not accepted, and nothing is sent. */
  readonly blockedBy?: string;
}

export interface GroupStateDeps {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  /** Compares a member's identity key in a verified record with the pin (pinning it on first sight). */
  checkIdentity(userId: string, identityKey: string): Promise<'ok' | 'changed'>;
  now(): number;
}

const enc = encodeURIComponent;

export class GroupStates {
  readonly #groups = new Map<string, Promise<GroupState>>();

  constructor(
    private readonly deps: GroupStateDeps,
    private readonly device: DeviceState,
    private readonly directory: Directory,
  ) {
    device.onReset(() => this.#groups.clear());
  }

  forget(chatId: string): void {
    this.#groups.delete(chatId);
  }

  /** The group's verified state (synced from the server when `sync`, or when not loaded yet). */
  get(chatId: string, sync = false): Promise<GroupState> {
    const current = this.#groups.get(chatId);
    if (current && !sync) return current;
    const next = (async () => this.#load(chatId, current ? await current.catch(() => undefined) : undefined))();
    next.catch(() => {
      if (this.#groups.get(chatId) === next) this.#groups.delete(chatId);
    });
    this.#groups.set(chatId, next);
    return next;
  }

  /** Takes a chain this device extended itself (it signed the head) with the new epoch key. */
  async adopt(chatId: string, chain: GroupChain, key: EpochKey): Promise<void> {
    const prev = await this.#groups.get(chatId)?.catch(() => undefined);
    const state: GroupState = { chain, wrapped: new Map(prev?.wrapped ?? []), keys: new Map(prev?.keys ?? []) };
    state.keys.set(key.epoch, key);
    this.#groups.set(chatId, Promise.resolve(state));
    await this.#pin(chatId, chain);
  }

  // ---- forks ---------------------------------------------------------------------

  async forkAlert(chatId: string): Promise<ForkAlert | null> {
    await this.device.me();
    const f = this.device.state.forks?.[chatId];
    return f ? { chatId, ...f } : null;
  }

  /** Records a fork (the first one seen stays until resolved) and tells whoever listens. */
  async noteFork(chatId: string, alert: Omit<StoredForkAlert, 'seenAt'>): Promise<void> {
    const forks = this.device.state.forks ?? {};
    if (forks[chatId]) return;
    await this.device.save({ forks: { ...forks, [chatId]: { ...alert, seenAt: this.deps.now() } } });
  }

  /** The user accepts the server's current history: the alert goes, and the chain is verified and pinned anew. */
  async resolveFork(chatId: string): Promise<void> {
    await this.device.me();
    const { [chatId]: _fork, ...forks } = this.device.state.forks ?? {};
    const { [chatId]: _head, ...heads } = this.device.state.heads;
    const { [chatId]: _hashes, ...hashes } = this.device.state.hashes ?? {};
    await this.device.save({ forks, heads, hashes });
    this.#groups.delete(chatId);
    await this.get(chatId, true);
  }

  async requireNoFork(chatId: string): Promise<void> {
    const f = await this.forkAlert(chatId);
    if (f) {
      throw new BilTrustError(
        'group_forked',
        `this group's history forked at epoch ${f.epoch}${f.userId ? ` (seen in a message from ${f.userId})` : ''}: compare the member list with the others, then resolve it (chats.resolveFork)`,
        { chat_id: chatId, epoch: f.epoch, user_id: f.userId },
      );
    }
  }

  // ---- loading ---------------------------------------------------------------------

  async #fetchEpochs(chatId: string, after: number): Promise<EpochJson[]> {
    const epochs: EpochJson[] = [];
    for (let pages = 0; ; pages++) {
      if (pages >= MAX_PAGES) throw new BilProtocolError(`epochs of ${chatId}: more than ${MAX_PAGES} pages`);
      const from = epochs.length ? epochs[epochs.length - 1]!.epoch : after;
      const page = epochsPage(await this.deps.call<unknown>('GET', `/v1/chats/${enc(chatId)}/keys?after_epoch=${from}&limit=100`));
      if (page.epochs.some((e) => e.epoch <= from)) throw new BilProtocolError(`epochs of ${chatId}: a page went backwards`);
      epochs.push(...page.epochs);
      if (!page.has_more || page.epochs.length === 0) return epochs;
    }
  }

  async #load(chatId: string, prev: GroupState | undefined): Promise<GroupState> {
    const me = await this.device.me();
    // Fetch the head again when this device has no key for it yet: a member may have handed it one since.
    const head = prev ? prev.chain.head.epoch : 0;
    const after = prev && !prev.wrapped.has(head) ? head - 1 : head;
    const epochs = await this.#fetchEpochs(chatId, after);
    const fresh = epochs.filter((e) => e.epoch > head).map((e) => e.record as SignedEpochRecord);
    const stored = this.device.state.hashes?.[chatId] ?? [];
    const storedHead = this.device.state.heads[chatId];

    let chain: GroupChain;
    let checkFrom: number;
    let verifiedBefore = head;
    if (prev) {
      try {
        chain = fresh.length ? await extendGroupChain(prev.chain, fresh) : prev.chain;
      } catch {
        // Later records that don't extend the verified head: keep what was verified, and say where the histories part.
        await this.noteFork(chatId, { epoch: await this.#divergence(chatId, prev.chain), userId: '', source: 'chain' });
        return prev;
      }
      checkFrom = head + 1;
    } else {
      chain = await this.#verifyAgainstStored(chatId, fresh, stored, storedHead);
      // Members of records new to this device are checked against the pins; of
      // the rest only the head (older records were accepted before, or are history).
      verifiedBefore = Math.max(stored.length, storedHead?.epoch ?? 0);
      checkFrom = verifiedBefore === 0 ? chain.head.epoch : Math.min(verifiedBefore + 1, chain.head.epoch);
    }

    // Pins: the first record (from checkFrom) that lists a member with another key stops the chain before it.
    let blockedBy: string | undefined;
    for (let e = checkFrom; e <= chain.head.epoch && !blockedBy; e++) {
      for (const m of chain.epochs[e - 1]!.members.values()) {
        if (m.userId === me.userId) continue;
        if ((await this.deps.checkIdentity(m.userId, m.identityKey)) === 'changed') {
          blockedBy = m.userId;
          // A record new to this device is refused: the chain stops before it.
          if (e > verifiedBefore) {
            if (e === 1) throw new BilTrustError('identity_changed', `${m.userId} is listed with an identity key that is not the pinned one`, { chat_id: chatId, user_id: m.userId });
            chain = await verifyGroupChain(chain.epochs.slice(0, e - 1).map((x) => x.record), { chatId });
          }
          break;
        }
      }
    }

    const wrapped = new Map(prev?.wrapped ?? []);
    for (const e of epochs) if (e.wrapped_key) wrapped.set(e.epoch, e.wrapped_key);
    const state: GroupState = { chain, wrapped, keys: new Map(prev?.keys ?? []), ...(blockedBy ? { blockedBy } : {}) };
    await this.#pin(chatId, chain);
    return state;
  }

  /** The first epoch where the server's records differ from a verified chain (one past its head if they all agree). */
  async #divergence(chatId: string, chain: GroupChain): Promise<number> {
    try {
      const records = (await this.#fetchEpochs(chatId, 0)).map((e) => e.record as SignedEpochRecord);
      for (const e of chain.epochs) {
        const theirs = records[e.epoch - 1];
        if (!theirs || (await epochRecordHash(theirs).catch(() => '')) !== e.hash) return e.epoch;
      }
    } catch {
      // the server's answer doesn't even parse: the fork is somewhere after the head
    }
    return chain.head.epoch + 1;
  }

  /**
   * Verifies the server's records from genesis and compares them with the
   * hashes this device verified before. Where they first differ is a fork:
   * it is recorded, and the chain is cut back to the part both agree on, so
   * the history verified before stays readable. A chain shorter than the
   * pinned head (epochs withdrawn) is a fork too.
   */
  async #verifyAgainstStored(
    chatId: string,
    records: SignedEpochRecord[],
    stored: readonly string[],
    storedHead: { epoch: number; hash: string } | undefined,
  ): Promise<GroupChain> {
    if (records.length === 0) throw new BilProtocolError(`group ${chatId} has no epoch records`);
    let chain: GroupChain;
    try {
      chain = await verifyGroupChain(records, { chatId });
    } catch {
      // Part of it may still verify (a bad record later in the chain).
      let good = 0;
      for (let n = records.length - 1; n >= 1 && good === 0; n--) {
        if (await verifyGroupChain(records.slice(0, n), { chatId }).then(() => true, () => false)) good = n;
      }
      if (good === 0) throw new BilTrustError('group_forked', `the server's history of ${chatId} does not verify`, { chat_id: chatId, epoch: 1 });
      await this.noteFork(chatId, { epoch: good + 1, userId: '', source: 'chain' });
      chain = await verifyGroupChain(records.slice(0, good), { chatId });
    }
    const known = [...stored];
    if (storedHead && known.length < storedHead.epoch) known[storedHead.epoch - 1] = storedHead.hash;
    let diverge = 0;
    for (let i = 0; i < known.length; i++) {
      if (known[i] === undefined) continue;
      if (chain.epochs[i]?.hash !== known[i]) {
        diverge = i + 1;
        break;
      }
    }
    if (diverge === 0) return chain;
    await this.noteFork(chatId, { epoch: diverge, userId: '', source: 'chain' });
    if (diverge === 1) throw new BilTrustError('group_forked', `the server shows another history of ${chatId} from its first epoch`, { chat_id: chatId, epoch: 1 });
    // Keep the part both histories share (and don't pin the other one).
    const shared = chain.epochs.slice(0, Math.min(diverge - 1, chain.epochs.length)).map((e) => e.record);
    return verifyGroupChain(shared, { chatId });
  }

  async #pin(chatId: string, chain: GroupChain): Promise<void> {
    if (this.device.state.forks?.[chatId]) return; // pinned as it was until the user resolves the fork
    const known = this.device.state.heads[chatId];
    const hashes = this.device.state.hashes?.[chatId] ?? [];
    if (known && known.epoch >= chain.head.epoch && hashes.length >= chain.head.epoch) return;
    await this.device.save({
      heads: { ...this.device.state.heads, [chatId]: { epoch: chain.head.epoch, hash: chain.head.hash } },
      hashes: { ...(this.device.state.hashes ?? {}), [chatId]: chain.epochs.map((e) => e.hash) },
    });
  }

  // ---- keys and metadata ------------------------------------------------------------

  /** This device's key for an epoch, unwrapped and checked against the record's commitment; undefined if it has none. */
  async epochKey(state: GroupState, epoch: number): Promise<EpochKey | undefined> {
    const cached = state.keys.get(epoch);
    if (cached) return cached;
    const wrapped = state.wrapped.get(epoch);
    if (!wrapped || epoch > state.chain.head.epoch) return undefined;
    try {
      const me = await this.device.me();
      // A device the record doesn't list (linked since) proves it is a certified device of a listed member.
      const listed = state.chain.epochs[epoch - 1]?.members.get(me.userId)?.devices.has(me.deviceId);
      const deviceRecord = listed ? undefined : deviceRecordOf(await this.directory.own());
      const key = await unwrapEpochKey({ chain: state.chain, epoch, wrappedKey: wrapped, recipient: me, ...(deviceRecord ? { deviceRecord } : {}) });
      state.keys.set(epoch, key);
      return key;
    } catch {
      return undefined;
    }
  }

  /** The group's metadata from its verified head record: null for a version 1 record (none), undefined when this device can't open it. */
  async metadata(state: GroupState, epoch = state.chain.head.epoch): Promise<GroupMetadata | null | undefined> {
    const key = await this.epochKey(state, epoch);
    if (!key) return undefined;
    try {
      return await openGroupMetadata({ chain: state.chain, epochKey: key });
    } catch {
      return undefined;
    }
  }

  /** The group's title from its verified head record (version 1 records have none: null). */
  async title(state: GroupState): Promise<string | null> {
    return (await this.metadata(state))?.title ?? null;
  }
}
