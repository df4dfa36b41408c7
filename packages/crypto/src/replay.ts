import { assertUint, assertUuid } from './encoding.js';
import { fail } from './errors.js';

/** The header fields replay detection looks at (all signed by the sender). */
export interface ReplayKey {
  readonly chat_id: string;
  readonly message_id: string;
  readonly sender_device_id: string;
  readonly counter: number;
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
  senders: Map<string, Window>;
  seq: Window;
}

/** JSON form of a {@link ReplayGuard}, for persisting between sessions. */
export interface ReplayGuardSnapshot {
  readonly version: 1;
  readonly chats: Record<
    string,
    { ids: string[]; senders: Record<string, { highest: number; missing: Range[] }>; seq: { highest: number; missing: Range[] } }
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
 * An envelope is a replay if its message id was accepted in that chat before,
 * or its (sender device, counter) was: the counter is signed, so the server
 * can't renumber. Counters may arrive out of order; a counter below the
 * highest seen is accepted only if it was skipped (like the sliding window of
 * RFC 4303 §3.4.3, but exact). Skipped counters are reported as gaps, so a
 * server that drops a sender's message is noticed. The server's per-chat
 * `seq` can be tracked too, for fetching what is missing; it is not signed, so
 * it only drives catch-up, never acceptance.
 * @example
 * const guard = new ReplayGuard();
 * const { gap } = guard.accept(opened.header); // throws CannotDecryptError on a replay
 */
export class ReplayGuard {
  readonly #chats = new Map<string, ChatState>();

  constructor(snapshot?: ReplayGuardSnapshot) {
    if (snapshot === undefined) return;
    if (snapshot.version !== 1) throw new TypeError('replay: unknown snapshot version');
    for (const [chatId, c] of Object.entries(snapshot.chats)) {
      const senders = new Map<string, Window>();
      for (const [d, w] of Object.entries(c.senders)) senders.set(d, { highest: w.highest, missing: w.missing.map(([a, b]) => [a, b]) });
      this.#chats.set(chatId, {
        ids: new Set(c.ids),
        senders,
        seq: { highest: c.seq.highest, missing: c.seq.missing.map(([a, b]) => [a, b]) },
      });
    }
  }

  #chat(chatId: string): ChatState {
    let c = this.#chats.get(chatId);
    if (!c) {
      c = { ids: new Set(), senders: new Map(), seq: { highest: 0, missing: [] } };
      this.#chats.set(chatId, c);
    }
    return c;
  }

  /** True if accepting `header` now would be a replay. Changes nothing. */
  isReplay(header: ReplayKey): boolean {
    assertUuid(header.chat_id, 'chat_id');
    assertUuid(header.message_id, 'message_id');
    assertUuid(header.sender_device_id, 'sender_device_id');
    assertUint(header.counter, 'counter');
    const c = this.#chats.get(header.chat_id);
    if (!c) return false;
    if (c.ids.has(header.message_id)) return true;
    const w = c.senders.get(header.sender_device_id);
    if (!w || header.counter > w.highest) return false;
    return inMissing(w, header.counter) < 0;
  }

  /**
   * Records an authenticated envelope. Throws {@link CannotDecryptError} if it
   * is a replay; otherwise returns the counter range it skipped, if any.
   */
  accept(header: ReplayKey): { gap?: CounterGap } {
    if (this.isReplay(header)) fail();
    const c = this.#chat(header.chat_id);
    let w = c.senders.get(header.sender_device_id);
    if (!w) {
      w = { highest: 0, missing: [] };
      c.senders.set(header.sender_device_id, w);
    }
    c.ids.add(header.message_id);
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
      chats[id] = { ids: [...c.ids], senders, seq: { highest: c.seq.highest, missing: c.seq.missing.map(([a, b]) => [a, b]) } };
    }
    return { version: 1, chats };
  }
}
