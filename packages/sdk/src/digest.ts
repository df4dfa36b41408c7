// Digests of unread chats (docs/digest.md): the client decrypts the unread
// messages locally, builds one transcript per chat, seals each to the digest
// service's published key (verified with the service identity key pinned on
// first use, kind "digest-request", signed by this device), sends them, waits
// for the result and opens the summaries sealed to this device. Chats below
// the threshold get their messages back instead; chats whose members switched
// digests off are never offered.
import { openSealedPayload, sealKeyId, sealPayload, utf8, fromUtf8, verifyServiceKey, type LocalDevice, type SignedServiceKey } from '@bil/crypto';
import { BilProtocolError, BilStateError } from './errors.js';
import { MAX_PAGES } from './chat/answers.js';
import type { HistoryMessage, UnreadOverview } from './chats.js';

const SERVICE = 'digest';

/** One chat's summary, opened and verified on this device. */
export interface DigestSummary {
  readonly kind: 'summary';
  readonly chatId: string;
  readonly topic: string;
  readonly keyPoints: string[];
  readonly actions: { owner: string; action: string }[];
  readonly language: string;
  readonly method: 'llm' | 'extractive';
  readonly messageCount: number;
}

/** A chat below the threshold: its unread messages instead of a digest. */
export interface DigestMessages {
  readonly kind: 'messages';
  readonly chatId: string;
  readonly messages: HistoryMessage[];
}

/** A chat whose members switched digests off: not offered. */
export interface DigestDisabled {
  readonly kind: 'disabled';
  readonly chatId: string;
}

export type DigestOutcome = DigestSummary | DigestMessages | DigestDisabled;

export interface DigestOptions {
  /** Display names by user id, as the transcript names speakers (default: this user's username, else the user id). */
  names?: Record<string, string>;
  /** Pin this service identity key (Ed25519, base64url) instead of trusting the first one seen. */
  serviceIdentityKey?: string;
  /** Give up waiting after this many ms (default 60 000). */
  timeoutMs?: number;
  /** First poll interval in ms (default 250, then slower, up to 2 s); a live connection (`client.live()`) wakes the wait at once when the digest is settled. */
  pollMs?: number;
}

export interface DigestDeps {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  me(): Promise<{ local: LocalDevice; username: string }>;
  /** The service identity key pinned for `service`, or null. */
  pinnedService(service: string): Promise<string | null>;
  pinService(service: string, identityKey: string): Promise<void>;
  unread(options: { limit?: number; messagesPerChat?: number; pageToken?: string }): Promise<UnreadOverview>;
  history(chatId: string, options: { after?: number; limit?: number }): Promise<{ messages: HistoryMessage[]; hasMore: boolean }>;
  now(): number;
}

interface DigestKeyJson {
  key: { key_id: string; signed_key: SignedServiceKey };
  service_identity_key: string;
  min_unread_messages: number;
  max_chats_per_request: number;
  max_transcript_bytes: number;
}
interface PolicyJson {
  policy: { chat_id: string; enabled: boolean };
  min_unread_messages: number;
}
interface DigestJson {
  request_id: string;
  status: 'pending' | 'ready' | 'failed' | 'expired';
  failure_reason: string;
  results: { chat_id: string; sealed: unknown }[];
}

/** Typed failure of a digest request (status failed or expired, or the wait timed out). */
export class DigestFailedError extends Error {
  constructor(readonly reason: string) {
    super(`digest failed: ${reason}`);
    this.name = 'DigestFailedError';
  }
}

const enc = encodeURIComponent;

export class DigestEngine {
  /** Requests waiting for their outcome, woken by a live `digest` frame. */
  readonly #waiters = new Map<string, () => void>();
  /** Outcomes pushed before anyone waited (bounded). */
  readonly #early = new Set<string>();

  constructor(private readonly deps: DigestDeps) {}

  /** A live connection reported that a request of this device is settled (ready or failed). */
  settled(requestId: string): void {
    const wake = this.#waiters.get(requestId);
    if (wake) return wake();
    this.#early.add(requestId);
    if (this.#early.size > 64) this.#early.delete(this.#early.values().next().value!);
  }

  /** Resolves when the request is reported settled, or after `ms`. */
  #settledOrAfter(requestId: string, ms: number): Promise<void> {
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
  }

  /** Whether digests are on for a chat, and the threshold. */
  async policy(chatId: string): Promise<{ enabled: boolean; minUnread: number }> {
    const p = await this.deps.call<PolicyJson>('GET', `/v1/chats/${enc(chatId)}/digest-policy`);
    return { enabled: p.policy.enabled, minUnread: p.min_unread_messages };
  }

  /** Switches digests off for a chat (for every member), or withdraws this user's switch-off. */
  async setPolicy(chatId: string, enabled: boolean): Promise<{ enabled: boolean }> {
    const p = await this.deps.call<{ policy: { enabled: boolean } }>('PUT', `/v1/chats/${enc(chatId)}/digest-policy`, { enabled });
    return { enabled: p.policy.enabled };
  }

  /** The chats of an unread overview a digest can be offered for (digests on, at least the threshold unread). */
  async offered(overview: UnreadOverview): Promise<string[]> {
    const out: string[] = [];
    for (const c of overview.chats) {
      const p = await this.policy(c.chatId);
      if (p.enabled && c.unreadCount >= p.minUnread) out.push(c.chatId);
    }
    return out;
  }

  async digest(chatIds: readonly string[], options: DigestOptions = {}): Promise<DigestOutcome[]> {
    const { local, username } = await this.deps.me();
    const keyJson = await this.deps.call<DigestKeyJson>('GET', '/v1/digest/key');
    const pinned = options.serviceIdentityKey ?? (await this.deps.pinnedService(SERVICE));
    const identityKey = pinned ?? keyJson.service_identity_key;
    const to = await verifyServiceKey(keyJson.key.signed_key, { identityKey, service: SERVICE, now: this.deps.now() }).catch(() => {
      throw new BilStateError('digest_key_untrusted', 'the digest key is not signed by the pinned digest service identity key');
    });
    if (!pinned) await this.deps.pinService(SERVICE, identityKey);

    const overview = await this.deps.unread({ limit: 500 });
    const outcomes = new Map<string, DigestOutcome>();
    const transcripts: { chat_id: string; sealed: unknown; message_count: number }[] = [];
    const names = { [local.userId]: username, ...options.names };
    for (const chatId of chatIds) {
      const policy = await this.policy(chatId);
      const info = overview.chats.find((c) => c.chatId === chatId);
      if (!policy.enabled) {
        outcomes.set(chatId, { kind: 'disabled', chatId });
        continue;
      }
      const messages = info ? await this.#unreadMessages(chatId, info.firstUnreadSeq, keyJson.max_transcript_bytes) : [];
      if (!info || info.unreadCount < policy.minUnread) {
        outcomes.set(chatId, { kind: 'messages', chatId, messages });
        continue;
      }
      const transcript = {
        type: 'bil.digest-transcript.v1',
        chat_id: chatId,
        title: info.title,
        messages: messages
          .filter((m) => m.ok)
          .map((m) => ({ seq: m.seq, sender: names[m.senderUserId] ?? m.senderUserId, sent_at: m.timestamp, text: m.text })),
      };
      let plaintext = utf8(JSON.stringify(transcript));
      while (plaintext.length > keyJson.max_transcript_bytes && transcript.messages.length > 1) {
        transcript.messages.shift();
        plaintext = utf8(JSON.stringify(transcript));
      }
      const sealed = await sealPayload({ to, kind: 'digest-request', context: `${chatId}:${local.deviceId}`, createdAt: this.deps.now(), plaintext, signer: local.keys.signing });
      transcripts.push({ chat_id: chatId, sealed, message_count: transcript.messages.length });
    }

    if (transcripts.length > 0) {
      const requestId = crypto.randomUUID();
      let d = (await this.deps.call<{ digest: DigestJson }>('POST', '/v1/digests', { request_id: requestId, transcripts })).digest;
      const deadline = Date.now() + (options.timeoutMs ?? 60_000);
      // A live connection (client.live()) is told the moment the digest is
      // settled and wakes this loop; polling, slowing down, covers the rest.
      let pollMs = options.pollMs ?? 250;
      while (d.status === 'pending') {
        if (Date.now() > deadline) throw new DigestFailedError('client_timeout');
        await this.#settledOrAfter(requestId, Math.min(pollMs, Math.max(0, deadline - Date.now())));
        pollMs = Math.min(pollMs * 1.5, Math.max(options.pollMs ?? 0, 2000));
        d = (await this.deps.call<{ digest: DigestJson }>('GET', `/v1/digests/${enc(requestId)}`)).digest;
      }
      if (d.status !== 'ready') throw new DigestFailedError(d.failure_reason || d.status);
      for (const r of d.results) {
        const opened = await openSealedPayload(r.sealed, {
          privateKey: local.keys.encryption.privateKey,
          keyId: await deviceKeyId(local),
          kind: 'digest-result',
          context: `${requestId}:${r.chat_id}`,
          signerKey: identityKey,
        }).catch(() => {
          throw new BilStateError('digest_result_untrusted', 'a digest result did not open or is not signed by the digest service');
        });
        const s = JSON.parse(fromUtf8(opened.plaintext)) as {
          chat_id: string; topic: string; key_points: string[]; actions: { owner: string; action: string }[]; language: string; method: 'llm' | 'extractive'; message_count: number;
        };
        if (s.chat_id !== r.chat_id) throw new BilStateError('digest_result_untrusted', 'a digest result names another chat');
        outcomes.set(r.chat_id, {
          kind: 'summary',
          chatId: r.chat_id,
          topic: s.topic,
          keyPoints: s.key_points,
          actions: s.actions,
          language: s.language,
          method: s.method,
          messageCount: s.message_count,
        });
      }
    }
    return chatIds.map((id) => outcomes.get(id) ?? { kind: 'messages', chatId: id, messages: [] });
  }

  /** Every unread message of a chat from `firstSeq`, decrypted through the history path. */
  async #unreadMessages(chatId: string, firstSeq: number, maxBytes: number): Promise<HistoryMessage[]> {
    const out: HistoryMessage[] = [];
    let after = firstSeq - 1;
    let bytes = 0;
    for (let pages = 0; ; pages++) {
      if (pages >= MAX_PAGES) throw new BilProtocolError(`messages of ${chatId}: more than ${MAX_PAGES} pages`);
      const page = await this.deps.history(chatId, { after, limit: 200 });
      // Each page must move forward: a server repeating a page with has_more would otherwise be followed forever.
      const fresh = page.messages.filter((m) => m.seq > after);
      out.push(...fresh);
      for (const m of fresh) if (m.ok) bytes += m.text.length;
      if (page.hasMore && fresh.length === 0) throw new BilProtocolError(`messages of ${chatId}: a page says there is more but brings nothing new`);
      if (!page.hasMore || out.length >= 5000 || bytes > 4 * maxBytes) break;
      after = fresh[fresh.length - 1]!.seq;
    }
    return out;
  }
}

function deviceKeyId(local: LocalDevice): Promise<string> {
  return sealKeyId(local.keys.encryption.spki);
}

