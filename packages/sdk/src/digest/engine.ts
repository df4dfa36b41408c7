// Digests of unread chats (docs/sdk.md "Digests", docs/digest.md): the client
// decrypts the unread messages locally and summarises them where the caller
// says: on the device (nothing leaves it), with the user's own model, or at
// the digest service (sealed to the key the app configured). What may leave
// the device comes only from signed data this client verified (the group's
// signed `digests` setting, members' signed consents pinned here) and its
// user's intent (the threshold, the disclosure acknowledged per chat and
// mode); the server's switch is honoured only to withhold.
import type { LocalDevice, VerifiedDevice } from '@bil/crypto';
import { ModelSummarizer, SummarizerError, summarizeExtractive, type Transcript, type TranscriptMessage } from '@bil/summarizer';
import { MAX_PAGES } from '../chat/answers.js';
import type { HistoryMessage, UnreadOverview } from '../chats.js';
import { BilProtocolError, BilStateError } from '../errors.js';
import type { StoredDigestState } from '../key-store.js';
import { ConsentBook, type PolicyAnswer } from './consent.js';
import { digestKey, fitTranscript, openResults, postRequest, sealTranscript, transcriptSha256, waitForResult } from './server.js';
import {
  disclosureText,
  DigestFailedError,
  type DigestDisabledReason,
  type DigestMode,
  type DigestOptions,
  type DigestOutcome,
  type DigestPolicy,
  type DigestSummary,
  type PendingDigest,
} from './types.js';

export const DEFAULT_MIN_UNREAD = 20;
const MODES: readonly DigestMode[] = ['server', 'device', 'model'];
const MAX_MESSAGES = 5000;
const enc = encodeURIComponent;

export interface DigestDeps {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  me(): Promise<{ local: LocalDevice; username: string }>;
  unread(options: { limit?: number; messagesPerChat?: number; pageToken?: string }): Promise<UnreadOverview>;
  history(chatId: string, options: { after?: number; limit?: number }): Promise<{ messages: HistoryMessage[]; hasMore: boolean }>;
  /** A user's verified devices. */
  devices(userId: string): Promise<{ devices: readonly VerifiedDevice[] }>;
  /** The group's signed `digests` setting at its verified head (`allowed` for personal chats). */
  groupSetting(chatId: string): Promise<'allowed' | 'off' | 'unverified'>;
  state(): Promise<StoredDigestState>;
  save(patch: Partial<StoredDigestState>): Promise<void>;
  /** `BilClientOptions.digest`. */
  settings: { serviceIdentityKey?: string; minUnread?: number };
  now(): number;
}

/** A chat ready to summarise: what leaves the device, if anything, in this mode. */
interface Prepared {
  transcript: Transcript;
  excluded: number;
}

export class DigestEngine {
  readonly consents: ConsentBook;
  readonly #waiters = new Map<string, () => void>();
  readonly #early = new Set<string>();

  constructor(private readonly deps: DigestDeps) {
    this.consents = new ConsentBook({ ...deps, me: async () => (await deps.me()).local });
  }

  /** A live connection reported that a request of this device is settled (ready or failed). */
  settled(requestId: string): void {
    const wake = this.#waiters.get(requestId);
    if (wake) return wake();
    this.#early.add(requestId);
    if (this.#early.size > 64) this.#early.delete(this.#early.values().next().value!);
  }

  #settledOrAfter = (requestId: string, ms: number): Promise<void> => {
    if (this.#early.delete(requestId)) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(requestId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.set(requestId, done);
    });
  };

  #minUnread(options: { minUnread?: number }): number {
    const n = options.minUnread ?? this.deps.settings.minUnread ?? DEFAULT_MIN_UNREAD;
    if (!Number.isSafeInteger(n) || n < 1) throw new TypeError('minUnread: expected a positive integer');
    return n;
  }

  // ---- policy -------------------------------------------------------------------

  async #serverPolicy(chatId: string): Promise<PolicyAnswer['policy']> {
    const p = await this.deps.call<PolicyAnswer>('GET', `/v1/chats/${enc(chatId)}/digest-policy`);
    if (typeof p?.policy?.enabled !== 'boolean') throw new BilProtocolError('digest policy: no enabled flag');
    return p.policy;
  }

  /** Whether a server or model digest of a chat may be made, and who is left out (verified, pinned). */
  async policy(chatId: string): Promise<DigestPolicy> {
    const groupSetting = await this.deps.groupSetting(chatId);
    const server = await this.#serverPolicy(chatId);
    const pins = await this.consents.update(chatId, server.consents);
    return {
      enabled: groupSetting === 'allowed' && server.enabled,
      minUnread: this.#minUnread({}),
      serverEnabled: server.enabled,
      groupSetting,
      excludedUserIds: [...ConsentBook.excluded(pins)],
    };
  }

  /** The service's chat-wide switch: off for every member (a policy the service enforces), or this user's switch-off withdrawn. */
  async setPolicy(chatId: string, enabled: boolean): Promise<{ enabled: boolean }> {
    const p = await this.deps.call<{ policy: { enabled: boolean } }>('PUT', `/v1/chats/${enc(chatId)}/digest-policy`, { enabled });
    return { enabled: p.policy.enabled };
  }

  /** The chats of an unread overview a digest can be offered for in a mode (the client's threshold; for server and model, digests allowed). */
  async offered(overview: UnreadOverview, options: { on?: DigestMode; minUnread?: number } = {}): Promise<string[]> {
    const min = this.#minUnread(options);
    const out: string[] = [];
    for (const c of overview.chats) {
      if (c.unreadCount < min) continue;
      if ((options.on ?? 'server') === 'device' || (await this.policy(c.chatId)).enabled) out.push(c.chatId);
    }
    return out;
  }

  /** Signs and stores this user's consent for a chat: `false` leaves their messages out of every member's server and model digests. */
  setConsent(chatId: string, include: boolean): Promise<{ include: boolean; version: number }> {
    return this.consents.set(chatId, include);
  }

  /** What leaves the device in a mode, and who can read it. */
  disclosure(on: DigestMode, model?: { baseURL?: string }): string {
    if (!MODES.includes(on)) throw new TypeError(`on: expected one of ${MODES.join(', ')}`);
    return disclosureText(on, model);
  }

  // ---- digests ------------------------------------------------------------------

  async digest(chatIds: readonly string[], options: DigestOptions = {}): Promise<DigestOutcome[]> {
    const on = options.on ?? 'server';
    if (!MODES.includes(on)) throw new TypeError(`on: expected one of ${MODES.join(', ')}`);
    if (on === 'model' && (typeof options.model?.apiKey !== 'string' || options.model.apiKey === '')) throw new TypeError("model: { apiKey } is required for on: 'model'");
    const minUnread = this.#minUnread(options);
    const identityKey = on === 'server' ? (options.serviceIdentityKey ?? this.deps.settings.serviceIdentityKey) : undefined;
    if (on === 'server' && !identityKey) {
      throw new BilStateError('digest_key_not_configured', "no digest service identity key is configured (BilClientOptions.digest.serviceIdentityKey): a server digest can't be sealed");
    }
    if (identityKey !== undefined && (typeof identityKey !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(identityKey))) {
      throw new TypeError('serviceIdentityKey: expected an Ed25519 public key (32 bytes, base64url)');
    }
    const { local, username } = await this.deps.me();
    // Before anything is read: the key must verify under the configured identity key.
    const key = identityKey ? await digestKey(this.deps, identityKey) : undefined;
    const requestId = crypto.randomUUID();
    const names: Record<string, string> = { [local.userId]: username, ...options.names };

    const overview = await this.deps.unread({ limit: 500 });
    const outcomes = new Map<string, DigestOutcome>();
    const prepared: Prepared[] = [];
    for (const chatId of new Set(chatIds)) {
      const info = overview.chats.find((c) => c.chatId === chatId);
      const messages = info ? await this.#unreadMessages(chatId, info.firstUnreadSeq) : [];
      const readable = messages.filter((m) => m.ok);
      // The threshold counts what this device decrypted, not the server's count.
      if (!info || readable.length < minUnread) {
        outcomes.set(chatId, { kind: 'messages', chatId, messages });
        continue;
      }
      let kept = readable;
      if (on !== 'device') {
        const gate = await this.#gate(chatId, new Set(readable.map((m) => m.senderUserId)));
        if (gate.disabled) {
          outcomes.set(chatId, { kind: 'disabled', chatId, reason: gate.disabled });
          continue;
        }
        kept = readable.filter((m) => !gate.excluded.has(m.senderUserId));
        if (kept.length === 0) {
          outcomes.set(chatId, { kind: 'disabled', chatId, reason: 'members_opted_out' });
          continue;
        }
      }
      const transcriptMessages: TranscriptMessage[] = kept.map((m) => ({
        seq: m.seq,
        sender: names[m.senderUserId] ?? m.senderUserId,
        senderUserId: m.senderUserId,
        sentAt: m.timestamp,
        text: m.text,
      }));
      prepared.push({
        transcript: {
          requestId,
          chatId,
          deviceId: local.deviceId,
          title: info.title,
          fromSeq: info.firstUnreadSeq,
          toSeq: Math.max(...messages.map((m) => m.seq)),
          messages: transcriptMessages,
        },
        excluded: readable.length - kept.length,
      });
    }

    if (prepared.length > 0 && on !== 'device') await this.#disclose(on, prepared.map((p) => p.transcript.chatId), options);
    const ordered = [...chatIds];
    if (on === 'device') {
      for (const p of prepared) outcomes.set(p.transcript.chatId, { ...localSummary(p, summarizeExtractive(p.transcript)), on: 'device' });
    } else if (on === 'model') {
      await this.#byModel(prepared, options, outcomes);
    } else if (prepared.length > 0) {
      const pending = await this.#send(local, key!.to, key!.maxTranscriptBytes, identityKey!, requestId, prepared, ordered, outcomes);
      return this.#finish(local, pending, options);
    }
    return ordered.map((id) => outcomes.get(id)!);
  }

  /** Picks up a server digest that timed out (`DigestFailedError.pending`). */
  async resume(pending: PendingDigest, options: Pick<DigestOptions, 'timeoutMs' | 'pollMs'> = {}): Promise<DigestOutcome[]> {
    if (pending?.type !== 'bil.digest-pending.v1' || !Array.isArray(pending.chats)) throw new TypeError('pending: expected DigestFailedError.pending');
    const { local } = await this.deps.me();
    if (pending.deviceId !== local.deviceId) throw new TypeError('pending: a digest of another device');
    return this.#finish(local, pending, options);
  }

  async #finish(local: LocalDevice, pending: PendingDigest, options: Pick<DigestOptions, 'timeoutMs' | 'pollMs'>): Promise<DigestOutcome[]> {
    const d = await waitForResult(this.deps, pending, options, this.#settledOrAfter);
    const outcomes = new Map<string, DigestOutcome>(pending.outcomes.map((o) => [o.chatId, o]));
    for (const s of await openResults(local, pending, d)) outcomes.set(s.chatId, s);
    return pending.chatIds.map((id) => outcomes.get(id)!);
  }

  /** Signed group setting, the service's switch (withholding only), and the verified, pinned consents of the senders. */
  async #gate(chatId: string, senders: ReadonlySet<string>): Promise<{ disabled?: DigestDisabledReason; excluded: Set<string> }> {
    const setting = await this.deps.groupSetting(chatId);
    if (setting !== 'allowed') return { disabled: setting === 'off' ? 'group_setting' : 'group_setting_unverified', excluded: new Set() };
    const server = await this.#serverPolicy(chatId);
    if (!server.enabled) return { disabled: 'server_policy', excluded: new Set() };
    const pins = await this.consents.update(chatId, server.consents, senders);
    return { excluded: ConsentBook.excluded(pins) };
  }

  /** The user confirms, once per chat and mode, what leaves the device; remembered in the profile. */
  async #disclose(on: 'server' | 'model', chatIds: string[], options: DigestOptions): Promise<void> {
    const acked = (await this.deps.state()).disclosures ?? {};
    const unacked = chatIds.filter((id) => !acked[id]?.includes(on));
    if (unacked.length === 0) return;
    if (!options.confirm) {
      throw new BilStateError('digest_disclosure_required', `the first ${on} digest of a chat needs the user's confirmation of what leaves the device (options.confirm)`);
    }
    const yes = await options.confirm({ on, chatIds: unacked, text: disclosureText(on, options.model) });
    if (yes !== true) throw new BilStateError('digest_disclosure_declined', 'the user did not confirm what leaves the device: nothing was sent');
    const next = { ...acked };
    for (const id of unacked) next[id] = [...(next[id] ?? []), on];
    await this.deps.save({ disclosures: next });
  }

  /** Bring your own model: this client calls the user's endpoint with the user's key; no bil server is involved. */
  async #byModel(prepared: Prepared[], options: DigestOptions, outcomes: Map<string, DigestOutcome>): Promise<void> {
    const m = options.model!;
    const summarizer = new ModelSummarizer({
      apiKey: m.apiKey,
      ...(m.baseURL ? { baseURL: m.baseURL } : {}),
      ...(m.model ? { model: m.model } : {}),
      ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
      // The user's own key in the user's own client: what this mode is.
      dangerouslyAllowBrowser: true,
    });
    for (const p of prepared) {
      const signal = AbortSignal.timeout(options.timeoutMs ?? 60_000);
      const summary = await summarizer.summarize(p.transcript, signal).catch((err: unknown) => {
        if (signal.aborted) throw new DigestFailedError('client_timeout', { cause: err });
        throw new DigestFailedError(err instanceof SummarizerError ? err.reason : 'model_failed', { cause: err });
      });
      outcomes.set(p.transcript.chatId, { ...localSummary(p, summary), on: 'model' });
    }
  }

  /** Seals and sends the transcripts; returns what the results must echo. */
  async #send(
    local: LocalDevice,
    to: Parameters<typeof sealTranscript>[1],
    maxBytes: number,
    serviceIdentityKey: string,
    requestId: string,
    prepared: Prepared[],
    chatIds: string[],
    outcomes: Map<string, DigestOutcome>,
  ): Promise<PendingDigest> {
    const chats: PendingDigest['chats'][number][] = [];
    const transcripts: { chat_id: string; sealed: unknown; message_count: number }[] = [];
    for (const p of prepared) {
      const { transcript, plaintext } = fitTranscript(p.transcript, maxBytes);
      const sealed = await sealTranscript(this.deps, to, local, plaintext, transcript);
      transcripts.push({ chat_id: transcript.chatId, sealed, message_count: transcript.messages.length });
      chats.push({
        chatId: transcript.chatId,
        transcriptSha256: await transcriptSha256(plaintext),
        fromSeq: transcript.fromSeq,
        toSeq: transcript.toSeq,
        messageCount: transcript.messages.length,
        excludedCount: p.excluded,
      });
    }
    const pending: PendingDigest = {
      type: 'bil.digest-pending.v1',
      requestId,
      deviceId: local.deviceId,
      serviceIdentityKey,
      chats,
      outcomes: [...new Set(chatIds)].flatMap((id) => (outcomes.has(id) ? [outcomes.get(id)!] : [])),
      chatIds,
    };
    await postRequest(this.deps, requestId, transcripts);
    return pending;
  }

  /** Every unread message of a chat from `firstSeq`, decrypted through the history path. */
  async #unreadMessages(chatId: string, firstSeq: number): Promise<HistoryMessage[]> {
    const out: HistoryMessage[] = [];
    let after = firstSeq - 1;
    for (let pages = 0; ; pages++) {
      if (pages >= MAX_PAGES) throw new BilProtocolError(`messages of ${chatId}: more than ${MAX_PAGES} pages`);
      const page = await this.deps.history(chatId, { after, limit: 200 });
      // Each page must move forward: a server repeating a page with has_more would otherwise be followed forever.
      const fresh = page.messages.filter((m) => m.seq > after);
      out.push(...fresh);
      if (page.hasMore && fresh.length === 0) throw new BilProtocolError(`messages of ${chatId}: a page says there is more but brings nothing new`);
      if (!page.hasMore || out.length >= MAX_MESSAGES) break;
      after = fresh[fresh.length - 1]!.seq;
    }
    // The newest ones when there are more than a transcript takes.
    return out.slice(-MAX_MESSAGES);
  }
}

/** A summary made in this client (device or model mode). */
function localSummary(p: Prepared, s: { topic: string; keyPoints: string[]; actions: { owner: string; action: string }[]; language: string; method: 'llm' | 'extractive' }): Omit<DigestSummary, 'on'> {
  return {
    kind: 'summary',
    chatId: p.transcript.chatId,
    topic: s.topic,
    keyPoints: s.keyPoints,
    actions: s.actions.map((a) => ({ owner: a.owner, action: a.action })),
    language: s.language,
    method: s.method,
    messageCount: p.transcript.messages.length,
    excludedCount: p.excluded,
    fromSeq: p.transcript.fromSeq,
    toSeq: p.transcript.toSeq,
  };
}
