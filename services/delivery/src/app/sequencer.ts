// The per-chat ordering of one device's socket, as a pure state machine: no
// socket, no gRPC, no timer, no clock. The connection (connection.ts) feeds it
// what happened (a live frame arrived, the client sent `sync`, a page of
// history or of a gap fill came back from chat, a fill failed, a wait it was
// asked to arm ran out, NATS came back) and performs what it answers (write
// these frames in this order, send `synced`, run a gap fill for a chat, call
// back after so many ms, cut the socket off).
//
// The rules: live frames are held from the moment the socket is registered
// until history after the device's cursors has been sent and `synced`
// followed; then they go out in seq order per chat, at most once each
// (anything at or below the last seq sent is dropped). A frame that arrives
// ahead of a missing one is held; after `reorderWaitMs` (at once for a chat
// never seen) the gap is read from chat, and whatever is contiguous is
// released. A fill that fails is retried after `fillRetryMs`, with the same reach
// (to the held frames, or to the end of the chat for a resync).
//
// Every write it asks for is assumed to happen: a write that cannot happen
// closes the socket, after which this object answers nothing.

/** A frame on its way to the socket; message frames carry their chat and seq. */
export interface LiveFrame {
  data: string | Buffer;
  chatId?: string;
  seq?: number;
}

/** A message of a page read from chat; its frame is built only if it is sent. */
export interface PageMessage {
  readonly seq: number;
  frame(): string | Buffer;
}

export type SequencerAction =
  /** Write this frame now (cut the socket off if its queue is past the limit). */
  | { type: 'send'; data: string | Buffer }
  /** Catch-up is complete: send `synced` with these last seqs per chat. */
  | { type: 'synced'; cursors: Record<string, number> }
  /** Run a gap fill of this chat when the node has a free slot: `beginFill`, pages, `fillDone` / `fillFailed`. */
  | { type: 'fill'; chatId: string }
  /** Call `timeout(chatId, token)` after `ms`. */
  | { type: 'wait'; chatId: string; ms: number; token: number }
  /** Close the socket as a slow consumer (too many frames held); nothing more follows. */
  | { type: 'close'; reason: 'slowConsumer' };

/** What a page handed in answers: the messages to write in order (paced by the socket's drain) and where to read next. */
export interface PageStep {
  send: PageMessage[];
  /** Read the next page after this seq; undefined when this was the last page. */
  next: number | undefined;
}

/** The connection's settings object is passed as it is (no object per socket). */
export interface SequencerSettings {
  /** Frames held (while syncing, or ahead of a gap in one chat) past which the socket is cut off. */
  maxPendingFrames: number;
  /** How long a frame ahead of a missing one waits for it before the gap is read from chat. */
  reorderWaitMs: number;
  /** How long after a failed fill it is tried again (default 1 s). */
  fillRetryMs?: number;
}

const FILL_RETRY_MS = 1000;

export type Phase = 'awaiting_sync' | 'syncing' | 'live' | 'closed';

interface Fill {
  /** Last seq written by this fill (or before it). */
  last: number;
  /** Highest seq held ahead when it began, or Infinity: read to the end of the chat. */
  target: number;
  /** A read to the end was asked for while this fill ran: run one after it. */
  again: boolean;
}

interface Wait {
  token: number;
  toEnd: boolean;
}

const EMPTY: ReadonlySet<string> = new Set();
const done = (): PageStep => ({ send: [], next: undefined });

/**
 * What a socket keeps is what an idle one costs (issue 18), so every map and
 * set here is created on first use: an idle socket that synced no chat has
 * none of them.
 */
export class Sequencer {
  private state: Phase = 'awaiting_sync';
  /** Client cursors of the sync in progress. */
  private cursors: Record<string, number> | undefined;
  /** Frames that came before `synced` was sent, in arrival order. */
  private pending: LiveFrame[] | undefined;
  /** Highest seq sent per chat. */
  private delivered: Map<string, number> | undefined;
  /** Frames that arrived ahead of a missing seq, per chat. */
  private ahead: Map<string, Map<number, string | Buffer>> | undefined;
  /** Armed waits per chat (a `wait` action whose `timeout` has not come, or is stale). */
  private waits: Map<string, Wait> | undefined;
  /** Fills running, per chat. */
  private filling: Map<string, Fill> | undefined;
  /** Fills waiting for a node slot, per chat: true when it reads to the end. */
  private queued: Map<string, boolean> | undefined;
  /** Chats the device is known to belong to (from sync and live traffic). */
  private known: Set<string> | undefined;
  private tokens = 0;

  constructor(private readonly settings: SequencerSettings) {}

  get phase(): Phase {
    return this.state;
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  /** Chats the device is known to belong to (from sync and live traffic). */
  get chats(): ReadonlySet<string> {
    return this.known ?? EMPTY;
  }

  /** The highest seq sent in a chat, if any. */
  deliveredSeq(chatId: string): number | undefined {
    return this.delivered?.get(chatId);
  }

  /** How many frames are held ahead of a gap in a chat. */
  heldCount(chatId: string): number {
    return this.ahead?.get(chatId)?.size ?? 0;
  }

  /** The socket is gone: everything held is dropped and every later input answers nothing. */
  close(): void {
    this.state = 'closed';
    this.pending = undefined;
    this.ahead = undefined;
    this.waits = undefined;
    this.queued = undefined;
    this.cursors = undefined;
  }

  /** A live frame for this socket (held until synced, then ordered per chat). */
  deliver(frame: LiveFrame): SequencerAction[] {
    if (this.state === 'closed') return [];
    if (this.state !== 'live') {
      const pending = (this.pending ??= []);
      pending.push(frame);
      return pending.length > this.settings.maxPendingFrames ? this.cutOff() : [];
    }
    if (frame.chatId === undefined) return [{ type: 'send', data: frame.data }];
    // A chat's event without a seq (created, member added, …): sent as it comes; the chat is now one of the socket's.
    if (frame.seq === undefined) {
      this.noteChat(frame.chatId);
      return [{ type: 'send', data: frame.data }];
    }
    return this.ordered(frame.chatId, frame.seq, frame.data);
  }

  /**
   * The fast path of deliver() for a chat's message frame (most of fan-out):
   * true when the socket is live and this is the chat's next seq with nothing
   * held, queued or filling for it. The seq then counts as sent and the
   * caller writes the frame itself (no frame object, no actions); false
   * changes nothing, and the caller goes through deliver().
   */
  deliverNow(chatId: string, seq: number): boolean {
    if (this.state !== 'live' || this.ahead?.has(chatId) || this.filling?.has(chatId) || this.queued?.has(chatId)) return false;
    const d = this.delivered?.get(chatId);
    if (d === undefined ? seq !== 1 : seq !== d + 1) return false;
    this.noteChat(chatId);
    this.setDelivered(chatId, seq);
    return true;
  }

  // Catch-up: startSync, then chatListed per chat of the device and
  // historyPage per page read, then syncDone.

  /** The client's `sync`; false if one was already sent on this socket (`already_synced`). */
  startSync(cursors: Record<string, number>): boolean {
    if (this.state !== 'awaiting_sync') return false;
    this.state = 'syncing';
    this.cursors = cursors;
    return true;
  }

  /**
   * A chat of the device, with its last seq: history is read after the
   * client's cursor, else the device's stored ack, else from the start.
   * Answers the seq to read after, or undefined when there is nothing to read.
   */
  chatListed(chatId: string, lastSeq: number, stored: Record<string, number>): number | undefined {
    if (this.state !== 'syncing') return undefined;
    this.noteChat(chatId);
    const from = this.cursors?.[chatId] ?? stored[chatId] ?? 0;
    this.setDelivered(chatId, from);
    return lastSeq > from ? from : undefined;
  }

  /** A page of a chat's history: what to write (what was not sent yet, in order) and where to read next. */
  historyPage(chatId: string, messages: readonly PageMessage[], hasMore: boolean): PageStep {
    if (this.state !== 'syncing') return done();
    let last = this.delivered?.get(chatId) ?? 0;
    const send: PageMessage[] = [];
    for (const m of messages) {
      if (m.seq <= last) continue;
      send.push(m);
      last = m.seq;
    }
    this.setDelivered(chatId, last);
    return { send, next: hasMore && messages.length > 0 ? last : undefined };
  }

  /** History is written: `synced`, then the frames held meanwhile, in order. */
  syncDone(): SequencerAction[] {
    if (this.state !== 'syncing') return [];
    this.state = 'live';
    this.cursors = undefined;
    const actions: SequencerAction[] = [{ type: 'synced', cursors: Object.fromEntries(this.delivered ?? []) }];
    const held = this.pending;
    this.pending = undefined;
    for (const f of held ?? []) {
      actions.push(...this.deliver(f));
      if (this.closed) break;
    }
    return actions;
  }

  /**
   * This node's NATS connection came back: frames routed here meanwhile are
   * lost, so every chat the socket knows is read from chat after what it was
   * sent, to the end (a sync in progress reads everything anyway).
   */
  resync(): SequencerAction[] {
    if (this.state !== 'live') return [];
    const actions: SequencerAction[] = [];
    for (const chatId of this.chats) actions.push(...this.requestFill(chatId, true));
    return actions;
  }

  /** A wait armed by a `wait` action ran out. */
  timeout(chatId: string, token: number): SequencerAction[] {
    const wait = this.waits?.get(chatId);
    if (this.closed || wait?.token !== token) return []; // disarmed meanwhile (the gap closed)
    this.waits?.delete(chatId);
    return this.requestFill(chatId, wait.toEnd);
  }

  // Gap fill: a `fill` action, then beginFill when the node has a slot,
  // fillPage per page read, then fillDone (or fillFailed).

  /**
   * The node has a slot for this chat's fill. Answers where to read after
   * (`after` undefined: nothing to read, go to fillDone), or undefined when
   * the fill is not needed any more (the late frame came meanwhile, or a fill
   * of the chat is running).
   */
  beginFill(chatId: string): { after: number | undefined } | undefined {
    const toEnd = this.queued?.get(chatId) ?? false;
    this.queued?.delete(chatId);
    if (this.closed || this.filling?.has(chatId)) return undefined;
    const held = this.ahead?.get(chatId);
    if (!toEnd && !held?.size) return undefined;
    const last = this.delivered?.get(chatId) ?? 0;
    let target = Infinity;
    if (!toEnd) {
      target = last;
      for (const s of held!.keys()) if (s > target) target = s;
    }
    (this.filling ??= new Map()).set(chatId, { last, target, again: false });
    return { after: last < target ? last : undefined };
  }

  /**
   * A page of a fill: what to write (a frame held ahead is the same message,
   * with this device's key already in it) and where to read next.
   */
  fillPage(chatId: string, messages: readonly PageMessage[], hasMore: boolean): PageStep {
    const fill = this.filling?.get(chatId);
    if (this.closed || !fill) return done();
    const held = this.ahead?.get(chatId);
    const send: PageMessage[] = [];
    for (const m of messages) {
      if (m.seq <= fill.last) continue;
      const data = held?.get(m.seq);
      send.push(data === undefined ? m : { seq: m.seq, frame: () => data });
      fill.last = m.seq;
    }
    if (send.length > 0) this.setDelivered(chatId, fill.last);
    const more = hasMore && messages.length > 0 && fill.last < fill.target;
    return { send, next: more ? fill.last : undefined };
  }

  /**
   * The fill read what it could: held frames it did not reach are released
   * anyway (the messages between are not visible to this device), and
   * frames still held beyond a new gap wait again.
   */
  fillDone(chatId: string): SequencerAction[] {
    const fill = this.filling?.get(chatId);
    this.filling?.delete(chatId);
    if (this.closed || !fill) return [];
    if (fill.target !== Infinity && fill.last < fill.target) this.setDelivered(chatId, fill.target - 1);
    return this.afterFill(chatId, fill, this.release(chatId));
  }

  /**
   * A fill failed. `gone`: chat says the device's user is no longer a member
   * (its held frames are dropped); otherwise it is tried again after
   * `fillRetryMs`, as far as it was to read, and what it wrote meanwhile releases
   * what it can.
   */
  fillFailed(chatId: string, gone: boolean): SequencerAction[] {
    const fill = this.filling?.get(chatId);
    this.filling?.delete(chatId);
    if (this.closed || !fill) return [];
    if (gone) {
      this.ahead?.delete(chatId);
      this.waits?.delete(chatId);
      return [];
    }
    const toEnd = fill.target === Infinity || fill.again;
    return [this.arm(chatId, this.settings.fillRetryMs ?? FILL_RETRY_MS, toEnd), ...this.release(chatId)];
  }

  private afterFill(chatId: string, fill: Fill, actions: SequencerAction[]): SequencerAction[] {
    if (fill.again) return [...actions, ...this.requestFill(chatId, true)];
    if (this.ahead?.get(chatId)?.size && !this.waits?.has(chatId) && !this.queued?.has(chatId)) {
      actions.push(this.arm(chatId, this.settings.reorderWaitMs, false));
    }
    return actions;
  }

  private ordered(chatId: string, seq: number, data: string | Buffer): SequencerAction[] {
    this.noteChat(chatId);
    const d = this.delivered?.get(chatId);
    if (d !== undefined && seq <= d) return []; // already sent (history, redelivery or a second route)
    if (!this.filling?.has(chatId) && (d === undefined ? seq === 1 : seq === d + 1)) {
      this.setDelivered(chatId, seq);
      return [{ type: 'send', data }, ...this.release(chatId)];
    }
    const ahead = (this.ahead ??= new Map());
    let held = ahead.get(chatId);
    if (!held) ahead.set(chatId, (held = new Map()));
    held.set(seq, data);
    if (held.size > this.settings.maxPendingFrames) return this.cutOff();
    // A chat this socket has never seen (joined or created after sync): fetch at once.
    if (d === undefined) return this.requestFill(chatId, false);
    if (this.waits?.has(chatId) || this.filling?.has(chatId) || this.queued?.has(chatId)) return [];
    return [this.arm(chatId, this.settings.reorderWaitMs, false)];
  }

  /** Sends what is held right after the last seq sent, in order. */
  private release(chatId: string): SequencerAction[] {
    const held = this.ahead?.get(chatId);
    if (!held) return [];
    const actions: SequencerAction[] = [];
    let d = this.delivered?.get(chatId) ?? 0;
    for (let next = held.get(d + 1); next !== undefined; next = held.get(d + 1)) {
      held.delete(d + 1);
      actions.push({ type: 'send', data: next });
      d += 1;
    }
    if (actions.length > 0) this.setDelivered(chatId, d);
    for (const s of held.keys()) if (s <= d) held.delete(s);
    if (held.size === 0) {
      this.ahead?.delete(chatId);
      if (!this.waits?.get(chatId)?.toEnd) this.waits?.delete(chatId); // a retry to the end still runs
    }
    return actions;
  }

  /** Asks for a fill unless one is queued (which then reads to the end if asked) or running (then one to the end follows). */
  private requestFill(chatId: string, toEnd: boolean): SequencerAction[] {
    if (this.closed) return [];
    const running = this.filling?.get(chatId);
    if (running) {
      if (toEnd) running.again = true; // it may have read its last page already
      return [];
    }
    const queued = (this.queued ??= new Map());
    if (queued.has(chatId)) {
      if (toEnd) queued.set(chatId, true);
      return [];
    }
    queued.set(chatId, toEnd);
    return [{ type: 'fill', chatId }];
  }

  private arm(chatId: string, ms: number, toEnd: boolean): SequencerAction {
    const token = ++this.tokens;
    (this.waits ??= new Map()).set(chatId, { token, toEnd });
    return { type: 'wait', chatId, ms, token };
  }

  private cutOff(): SequencerAction[] {
    this.close();
    return [{ type: 'close', reason: 'slowConsumer' }];
  }

  private noteChat(chatId: string): void {
    (this.known ??= new Set()).add(chatId);
  }

  private setDelivered(chatId: string, seq: number): void {
    (this.delivered ??= new Map()).set(chatId, seq);
  }
}
