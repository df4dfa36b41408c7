import { canonicalBytes, type CanonicalValue } from './canonical-json.js';
import { assertUint, assertUuid, toBase64Url } from './encoding.js';
import { fail } from './errors.js';
import { sha256 } from './kdf.js';

/** The header fields replay detection looks at (all signed by the sender). */
export interface ReplayKey {
  readonly chat_id: string;
  readonly message_id: string;
  readonly sender_device_id: string;
  readonly counter: number;
}

/**
 * Where a message was read: the chat it was fetched for, the seq the server
 * gave it and the digest of its envelope ({@link envelopeDigest}). Reading the
 * same sighting again is a re-read; the same message id in another one is a replay.
 */
export interface Sighting {
  readonly chat_id: string;
  readonly message_id: string;
  readonly seq: number;
  /** base64url SHA-256 of the envelope's canonical JSON; `""` when unknown (state saved before it was kept). */
  readonly envelope_sha256: string;
}

/** What reading a message again is: a first read, a re-read of the same envelope at the same place, or a replay. */
export type SightingVerdict = 'new' | 'reread' | 'replay';

/**
 * The digest that identifies an envelope for re-reads: base64url (no padding)
 * of SHA-256 over the canonical JSON (RFC 8785) of `{header, ciphertext,
 * signature}`, so the same envelope gives the same digest whatever the JSON's
 * key order or spacing. `""` for anything that isn't an envelope object (it
 * then matches nothing, and opening it fails anyway).
 */
export async function envelopeDigest(envelope: unknown): Promise<string> {
  if (typeof envelope !== 'object' || envelope === null) return '';
  const e = envelope as Record<string, unknown>;
  let bytes: Uint8Array;
  try {
    bytes = canonicalBytes({ header: e.header, ciphertext: e.ciphertext, signature: e.signature } as CanonicalValue);
  } catch {
    return '';
  }
  return toBase64Url(await sha256(bytes));
}

/** Counters of one sender device in one chat that were skipped: `from`..`to` inclusive. */
export interface CounterGap {
  readonly chat_id: string;
  readonly sender_device_id: string;
  readonly from: number;
  readonly to: number;
}

/** Server-assigned per-chat sequence numbers not yet seen: `from`..`to` inclusive. */
export interface SeqGap {
  readonly chat_id: string;
  readonly from: number;
  readonly to: number;
}

type Range = [from: number, to: number];

interface Window {
  highest: number;
  missing: Range[];
}

interface ChatState {
  ids: Set<string>;
  /** message id → [seq, envelope digest] where it was accepted (absent: accepted before sightings were kept). */
  reads: Map<string, [seq: number, envelopeSha256: string]>;
  senders: Map<string, Window>;
  seq: Window;
}

/** JSON form of a {@link ReplayGuard}, for persisting between sessions. */
export interface ReplayGuardSnapshot {
  readonly version: 1;
  readonly chats: Record<
    string,
    {
      ids: string[];
      /** message id → [seq, envelope digest] of its sighting (optional: snapshots from before it was kept lack it). */
      reads?: Record<string, [number, string]>;
      senders: Record<string, { highest: number; missing: Range[] }>;
      seq: { highest: number; missing: Range[] };
    }
  >;
}

/** Outstanding ranges kept per window; older ones are dropped and their counters refused from then on. */
const MAX_MISSING_RANGES = 1024;

function inMissing(w: Window, n: number): number {
  return w.missing.findIndex(([a, b]) => a <= n && n <= b);
}

/** Records `n` in a window; returns the newly skipped range, if any. Caller checked it isn't a replay. */
function record(w: Window, n: number): Range | undefined {
  if (n > w.highest) {
    const gap: Range | undefined = n > w.highest + 1 ? [w.highest + 1, n - 1] : undefined;
    if (gap) {
      w.missing.push(gap);
      if (w.missing.length > MAX_MISSING_RANGES) w.missing.splice(0, w.missing.length - MAX_MISSING_RANGES);
    }
    w.highest = n;
    return gap;
  }
  const i = inMissing(w, n);
  const [a, b] = w.missing[i]!;
  const parts: Range[] = [];
  if (a < n) parts.push([a, n - 1]);
  if (n < b) parts.push([n + 1, b]);
  w.missing.splice(i, 1, ...parts);
  return undefined;
}

/**
 * Replay detection and gap reporting for the envelopes of a device's chats.
 *
 * An envelope is a replay if its message id was accepted before (in any
 * chat: message ids are unique), or its (sender device, counter) was: the
 * counter is signed, so the server can't renumber. Counters may arrive out of
 * order; a counter below the highest seen is accepted only if it was skipped
 * (like the sliding window of RFC 4303 §3.4.3, but exact). Skipped counters
 * are reported as gaps, so a server that drops a sender's message is noticed.
 * The server's per-chat `seq` can be tracked too, for fetching what is
 * missing; it is not signed, so it only drives catch-up, never acceptance.
 *
 * Re-read vs replay (docs/protocol.md, "Replay and gaps"): history pages,
 * catch-up and restarts deliver an accepted message again. {@link classify}
 * tells them apart by the {@link Sighting}: the same chat, seq, message id
 * and envelope digest as when it was accepted is a re-read (open it again,
 * accept nothing); the same message id in another chat, at another seq or
 * with other envelope bytes is a replay.
 * @example
 * const guard = new ReplayGuard();
 * const { gap } = guard.accept(opened.header, { seq, envelope_sha256: await envelopeDigest(envelope) }); // throws CannotDecryptError on a replay
 */
export class ReplayGuard {
  readonly #chats = new Map<string, ChatState>();
  /** Every accepted message id → its chat. */
  readonly #chatOf = new Map<string, string>();

  constructor(snapshot?: ReplayGuardSnapshot) {
    if (snapshot === undefined) return;
    if (snapshot.version !== 1) throw new TypeError('replay: unknown snapshot version');
    for (const [chatId, c] of Object.entries(snapshot.chats)) {
      const senders = new Map<string, Window>();
      for (const [d, w] of Object.entries(c.senders)) senders.set(d, { highest: w.highest, missing: w.missing.map(([a, b]) => [a, b]) });
      const reads = new Map<string, [number, string]>();
      for (const [id, [seq, sha]] of Object.entries(c.reads ?? {})) reads.set(id, [seq, sha]);
      this.#chats.set(chatId, {
        ids: new Set(c.ids),
        reads,
        senders,
        seq: { highest: c.seq.highest, missing: c.seq.missing.map(([a, b]) => [a, b]) },
      });
      for (const id of c.ids) if (!this.#chatOf.has(id)) this.#chatOf.set(id, chatId);
    }
  }

  #chat(chatId: string): ChatState {
    let c = this.#chats.get(chatId);
    if (!c) {
      c = { ids: new Set(), reads: new Map(), senders: new Map(), seq: { highest: 0, missing: [] } };
      this.#chats.set(chatId, c);
    }
    return c;
  }

  /**
   * What reading `s` is, before opening it: `new` (never accepted: open it
   * with this guard, which accepts it), `reread` (accepted at exactly this
   * chat, seq and envelope digest: open it again without accepting) or
   * `replay` (accepted in another chat, at another seq or with other bytes:
   * refuse it). A message accepted without a known sighting (state saved
   * before sightings were kept) is a re-read while what is known matches;
   * {@link place} then binds the rest. Changes nothing.
   */
  classify(s: Sighting): SightingVerdict {
    assertUuid(s.chat_id, 'chat_id');
    assertUuid(s.message_id, 'message_id');
    assertUint(s.seq, 'seq');
    const chatId = this.#chatOf.get(s.message_id);
    if (chatId === undefined) return 'new';
    if (chatId !== s.chat_id) return 'replay';
    const at = this.#chats.get(chatId)!.reads.get(s.message_id);
    if (!at) return 'reread';
    const [seq, sha] = at;
    if (seq !== s.seq) return 'replay';
    if (sha !== '' && sha !== s.envelope_sha256) return 'replay';
    return 'reread';
  }

  /**
   * Binds the sighting of an accepted message where it is not known yet (a
   * message accepted without one, or whose digest was unknown). Throws
   * {@link CannotDecryptError} if it contradicts the known one (a replay),
   * or if the message was never accepted.
   */
  place(s: Sighting): void {
    if (this.classify(s) !== 'reread') fail();
    const reads = this.#chat(s.chat_id).reads;
    const at = reads.get(s.message_id);
    if (!at || at[1] === '') reads.set(s.message_id, [s.seq, at?.[1] || s.envelope_sha256]);
  }

  /** True if accepting `header` now would be a replay. Changes nothing. */
  isReplay(header: ReplayKey): boolean {
    assertUuid(header.chat_id, 'chat_id');
    assertUuid(header.message_id, 'message_id');
    assertUuid(header.sender_device_id, 'sender_device_id');
    assertUint(header.counter, 'counter');
    if (this.#chatOf.has(header.message_id)) return true;
    const c = this.#chats.get(header.chat_id);
    if (!c) return false;
    const w = c.senders.get(header.sender_device_id);
    if (!w || header.counter > w.highest) return false;
    return inMissing(w, header.counter) < 0;
  }

  /**
   * Records an authenticated envelope, with where it was read when known
   * (`at`: its seq and envelope digest, for telling re-reads from replays).
   * Throws {@link CannotDecryptError} if it is a replay; otherwise returns the
   * counter range it skipped, if any.
   */
  accept(header: ReplayKey, at?: { seq: number; envelope_sha256: string }): { gap?: CounterGap } {
    if (this.isReplay(header)) fail();
    if (at) assertUint(at.seq, 'seq');
    const c = this.#chat(header.chat_id);
    let w = c.senders.get(header.sender_device_id);
    if (!w) {
      w = { highest: 0, missing: [] };
      c.senders.set(header.sender_device_id, w);
    }
    c.ids.add(header.message_id);
    this.#chatOf.set(header.message_id, header.chat_id);
    if (at) c.reads.set(header.message_id, [at.seq, at.envelope_sha256]);
    const range = record(w, header.counter);
    return range ? { gap: { chat_id: header.chat_id, sender_device_id: header.sender_device_id, from: range[0], to: range[1] } } : {};
  }

  /**
   * Notes a server-assigned per-chat `seq` (starting at 1) and returns the
   * range it skipped, if any. Seeing a seq twice is ignored: it is unsigned.
   */
  noteSeq(chatId: string, seq: number): { gap?: SeqGap } {
    assertUuid(chatId, 'chatId');
    assertUint(seq, 'seq');
    const w = this.#chat(chatId).seq;
    if (seq === 0 || (seq <= w.highest && inMissing(w, seq) < 0)) return {};
    const range = record(w, seq);
    return range ? { gap: { chat_id: chatId, from: range[0], to: range[1] } } : {};
  }

  /** Outstanding gaps, for one chat or all of them. */
  gaps(chatId?: string): { counters: CounterGap[]; seqs: SeqGap[] } {
    const counters: CounterGap[] = [];
    const seqs: SeqGap[] = [];
    for (const [id, c] of this.#chats) {
      if (chatId !== undefined && id !== chatId) continue;
      for (const [d, w] of c.senders) for (const [from, to] of w.missing) counters.push({ chat_id: id, sender_device_id: d, from, to });
      for (const [from, to] of c.seq.missing) seqs.push({ chat_id: id, from, to });
    }
    return { counters, seqs };
  }

  /** The highest counter accepted from a sender device in a chat (0: none yet). */
  highestCounter(chatId: string, senderDeviceId: string): number {
    return this.#chats.get(chatId)?.senders.get(senderDeviceId)?.highest ?? 0;
  }

  /** A JSON-serialisable copy of the state. */
  snapshot(): ReplayGuardSnapshot {
    const chats: ReplayGuardSnapshot['chats'] = {};
    for (const [id, c] of this.#chats) {
      const senders: Record<string, { highest: number; missing: Range[] }> = {};
      for (const [d, w] of c.senders) senders[d] = { highest: w.highest, missing: w.missing.map(([a, b]) => [a, b]) };
      chats[id] = {
        ids: [...c.ids],
        ...(c.reads.size > 0 ? { reads: Object.fromEntries([...c.reads].map(([m, [seq, sha]]) => [m, [seq, sha]])) } : {}),
        senders,
        seq: { highest: c.seq.highest, missing: c.seq.missing.map(([a, b]) => [a, b]) },
      };
    }
    return { version: 1, chats };
  }
}
