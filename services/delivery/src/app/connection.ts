// One authenticated WebSocket of one device. It holds the catch-up vs. live
// ordering for that device: live frames are held from the moment the socket
// is registered until history after the device's cursors has been sent and
// `synced` followed; then they are released in seq order per chat, skipping
// what history covered. A live frame that arrives ahead of a missing one
// waits briefly, then the gap is fetched from chat, so the device sees every
// message exactly once and in order whichever node fanned it out.
// Over 400 lines: that ordering state (sync, hold, release, gap fill) is one unit.
import { AppError, isDependencyUnavailable, type Logger, type VerifiedActor } from '@bil/runtime';
import type { WebSocket } from 'ws';
import {
  CloseCodes,
  CloseReasons,
  ERROR_CODES,
  FrameError,
  authOkFrame,
  errorFrame,
  helloFrame,
  messageFrame,
  parseClientFrame,
  pongFrame,
  syncedFrame,
  withWrappedKey,
  type ClientFrame,
  type ErrorCode,
} from '../domain/frames.js';
import { FrameLimiter } from '../domain/frame-limits.js';
import type { Actor, ChatBackend, StoredMessage } from '../infra/backends.js';

/**
 * A frame on its way to this socket; message frames carry their chat and seq.
 * A fan-out hands every socket of the node the same Buffer (UTF-8 encoded
 * once, written as a text frame without a copy per socket).
 */
export interface LiveFrame {
  data: string | Buffer;
  chatId?: string;
  seq?: number;
}

export interface ConnectionSettings {
  nodeId: string;
  maxBufferedBytes: number;
  maxPendingFrames: number;
  maxFrameBytes: number;
  syncTimeoutMs: number;
  reorderWaitMs: number;
  pingIntervalMs: number;
}

/** What a connection asks of its node. */
export interface ConnectionHost {
  chat: Pick<ChatBackend, 'listChats' | 'listMessagesAfter'>;
  verify(token: string): Promise<VerifiedActor>;
  storedCursors(deviceId: string): Promise<Record<string, number>>;
  ack(conn: Connection, chatId: string, seq: number): Promise<void>;
  typing(conn: Connection, chatId: string, active: boolean): Promise<void>;
  read(conn: Connection, chatId: string, seq: number): Promise<void>;
  subscribePresence(conn: Connection, userIds: string[], id?: string): Promise<void>;
  closed(conn: Connection): void;
  /** Runs a gap fill when the node has a free slot (a bounded number of fills at once per node). */
  gapFillSlot(fill: () => Promise<void>): Promise<void>;
  /**
   * Runs one catch-up read from chat when the node has a free slot: a storm of
   * syncs queues here (FIFO) instead of overrunning chat; waiting is never a
   * reason to close the socket, only a failed read is.
   */
  catchUpSlot<T>(read: () => Promise<T>): Promise<T>;
  count(metric: 'slow_consumer' | 'frames_out' | 'bad_frames' | 'gap_fills', n?: number): void;
}

type Phase = 'awaiting_sync' | 'syncing' | 'live' | 'closed';

const PAGE = 200;
const TEXT = { binary: false };
/** A gap fill gives up on a socket that drained nothing for this long. */
const FILL_STALL_MS = 500;
const MAX_BAD_FRAMES = 20;
let nextId = 0;
const EMPTY: ReadonlySet<string> = new Set();

/**
 * Per-socket state is what an idle socket costs, so it is kept small (issue 18:
 * an idle authenticated socket at ≤ 2x a raw `ws` one): the ordering maps and
 * sets, the frame limiter and the early-frame queue exist only once needed;
 * pings come from one node-wide timer (Hub), not a timer per socket.
 */
export class Connection {
  readonly id = `${process.pid}-${++nextId}`;
  private phase: Phase = 'awaiting_sync';
  private pending: LiveFrame[] | undefined;
  /** Highest seq sent per chat. */
  private delivered: Map<string, number> | undefined;
  /** Frames that arrived ahead of a missing seq, per chat. */
  private ahead: Map<string, Map<number, string | Buffer>> | undefined;
  private gapTimers: Map<string, NodeJS.Timeout> | undefined;
  private filling: Set<string> | undefined;
  /** Chats whose gap fill waits for a slot of the node. */
  private fillQueued: Set<string> | undefined;
  private expiryTimer?: NodeJS.Timeout;
  private syncTimer?: NodeJS.Timeout;
  private alive = true;
  private started = false;
  private badFrames = 0;
  private limiter: FrameLimiter | undefined;
  /** Chats the device is known to belong to (from sync and live traffic). */
  private knownChats: Set<string> | undefined;
  /** Frames a client sends right after the upgrade wait here until the socket is registered. */
  private early: Array<[Buffer, boolean]> | undefined;

  constructor(
    private readonly ws: WebSocket,
    public actor: VerifiedActor,
    private readonly host: ConnectionHost,
    private readonly settings: ConnectionSettings,
    private readonly logger: Logger,
  ) {
    ws.on('message', (data, isBinary) => this.received(data as Buffer, isBinary));
    ws.on('pong', () => (this.alive = true));
    ws.on('close', () => this.teardown());
    ws.on('error', () => this.teardown());
  }

  /** Chats the device is known to belong to (from sync and live traffic). */
  get chats(): ReadonlySet<string> {
    return this.knownChats ?? EMPTY;
  }

  private noteChat(chatId: string): void {
    (this.knownChats ??= new Set()).add(chatId);
  }

  private setDelivered(chatId: string, seq: number): void {
    (this.delivered ??= new Map()).set(chatId, seq);
  }

  private received(data: Buffer, isBinary: boolean): void {
    if (!this.started) {
      (this.early ??= []).push([data, isBinary]);
      return;
    }
    void this.onMessage(data, isBinary);
  }

  /** Called by the node once per ping interval: a socket that missed the last pong is dropped. */
  pingTick(): void {
    if (this.phase === 'closed' || !this.started) return;
    if (!this.alive) {
      this.ws.terminate();
      return;
    }
    this.alive = false;
    this.ws.ping();
  }

  get userId(): string {
    return this.actor.userId;
  }
  get deviceId(): string {
    return this.actor.deviceId;
  }
  get isClosed(): boolean {
    return this.phase === 'closed';
  }
  private get chatActor(): Actor {
    return { userId: this.actor.userId, deviceId: this.actor.deviceId, sessionId: this.actor.sessionId };
  }

  /** Starts serving: hello, timers, frame handling. Call after the device is registered (presence). */
  start(): void {
    if (this.phase === 'closed') return;
    this.armExpiry();
    this.syncTimer = setTimeout(() => this.close('syncTimeout'), this.settings.syncTimeoutMs);
    this.send(
      helloFrame({
        node: this.settings.nodeId,
        userId: this.userId,
        deviceId: this.deviceId,
        expiresAt: this.actor.expiresAt,
        maxFrameBytes: this.settings.maxFrameBytes,
      }),
    );
    this.started = true;
    const early = this.early;
    this.early = undefined;
    for (const [data, isBinary] of early ?? []) void this.onMessage(data, isBinary);
  }

  /** Closes with one of the protocol's close codes. */
  close(reason: keyof typeof CloseCodes): void {
    if (this.phase === 'closed') return;
    this.teardown();
    this.ws.close(CloseCodes[reason], CloseReasons[reason]);
    // A peer that does not read never completes the closing handshake.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /** Hands a live frame to this socket (held until synced, then ordered). */
  deliver(frame: LiveFrame): void {
    if (this.phase === 'closed') return;
    if (this.phase !== 'live') {
      const pending = (this.pending ??= []);
      pending.push(frame);
      if (pending.length > this.settings.maxPendingFrames) this.slow();
      return;
    }
    if (frame.chatId !== undefined && frame.seq !== undefined) this.ordered(frame.chatId, frame.seq, frame.data);
    else this.send(frame.data);
  }

  private teardown(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    clearTimeout(this.expiryTimer);
    clearTimeout(this.syncTimer);
    for (const t of this.gapTimers?.values() ?? []) clearTimeout(t);
    this.pending = undefined;
    this.ahead = undefined;
    this.early = undefined;
    this.host.closed(this);
  }

  private slow(): void {
    this.host.count('slow_consumer');
    this.logger.info({ deviceId: this.deviceId, buffered: this.ws.bufferedAmount }, 'slow consumer cut off');
    this.close('slowConsumer');
  }

  /** Writes a text frame unless the socket's queue is past the limit (then it is cut off). */
  private send(data: string | Buffer): boolean {
    if (this.phase === 'closed') return false;
    if (this.ws.bufferedAmount + data.length > this.settings.maxBufferedBytes) {
      this.slow();
      return false;
    }
    this.ws.send(data, TEXT);
    this.host.count('frames_out');
    return true;
  }

  /**
   * Waits for the socket to drain instead of cutting it off: history (up to
   * 30 s) and gap fills, which give up once the socket has not drained at all
   * for `stallMs` (a stalled peer is cut off at once, a reading one is paced).
   */
  private async sendPaced(data: string | Buffer, stallMs = 30_000): Promise<boolean> {
    const limit = this.settings.maxBufferedBytes / 2;
    const started = Date.now();
    let lowest = this.ws.bufferedAmount;
    let progressAt = started;
    while (this.phase !== 'closed' && this.ws.bufferedAmount > limit) {
      const now = Date.now();
      if (this.ws.bufferedAmount < lowest) {
        lowest = this.ws.bufferedAmount;
        progressAt = now;
      }
      if (now - started > 30_000 || now - progressAt > stallMs) {
        this.slow();
        return false;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.send(data);
  }

  private armExpiry(): void {
    clearTimeout(this.expiryTimer);
    const ms = Math.max(0, this.actor.expiresAt - Date.now());
    this.expiryTimer = setTimeout(() => this.close('tokenExpired'), Math.min(ms, 2 ** 31 - 1));
  }

  private async onMessage(data: Buffer, isBinary: boolean): Promise<void> {
    let frame: ClientFrame;
    try {
      if (isBinary) throw new FrameError('bad_frame', 'frames are JSON text, not binary');
      frame = parseClientFrame(data.toString('utf8'));
    } catch (err) {
      const e = err instanceof FrameError ? err : new FrameError('bad_frame', 'unreadable frame');
      this.host.count('bad_frames');
      this.send(errorFrame(e.code, e.message, e.id));
      if (++this.badFrames > MAX_BAD_FRAMES) this.close('tooManyErrors');
      return;
    }
    const allowed = (this.limiter ??= new FrameLimiter()).take(frame.type, Date.now());
    if (!allowed.ok) {
      this.host.count('bad_frames');
      this.send(errorFrame('rate_limited', `too many ${frame.type} frames; slow down`, frame.id, { retry_after_ms: allowed.retryAfterMs }));
      if (++this.badFrames > MAX_BAD_FRAMES) this.close('tooManyErrors');
      return;
    }
    try {
      await this.handle(frame);
    } catch (err) {
      const code = frameErrorCode(err);
      if (code === 'internal') this.logger.error({ err, type: frame.type }, 'frame handling failed');
      const text = err instanceof AppError ? err.message : 'a backend is unavailable, try again';
      this.send(errorFrame(code, code === 'internal' ? 'internal error' : text, frame.id));
    }
  }

  private async handle(frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'sync':
        return this.sync(frame.cursors, frame.id);
      case 'ack':
        return this.host.ack(this, frame.chatId, frame.seq);
      case 'auth':
        return this.refresh(frame.token, frame.id);
      case 'typing':
        return this.host.typing(this, frame.chatId, frame.active);
      case 'read':
        return this.host.read(this, frame.chatId, frame.seq);
      case 'presence_subscribe':
        return this.host.subscribePresence(this, frame.userIds, frame.id);
      case 'ping':
        this.send(pongFrame(frame.id));
        return;
      default: {
        const never: never = frame;
        throw new Error(`unhandled frame ${String(never)}`);
      }
    }
  }

  private async refresh(token: string, id?: string): Promise<void> {
    let next: VerifiedActor;
    try {
      next = await this.host.verify(token);
    } catch (err) {
      if (err instanceof AppError && err.code === 'token_revoked') {
        this.close('revoked');
        return;
      }
      throw err;
    }
    if (next.userId !== this.userId || next.deviceId !== this.deviceId) {
      this.send(errorFrame('auth_mismatch', 'the token is for another device', id));
      this.close('authMismatch');
      return;
    }
    this.actor = next;
    this.armExpiry();
    this.send(authOkFrame(next.expiresAt, id));
  }

  /** Catch-up: history after each cursor, in order, then `synced`, then the held live frames. */
  private async sync(cursors: Record<string, number>, id?: string): Promise<void> {
    if (this.phase !== 'awaiting_sync') {
      this.send(errorFrame('already_synced', 'sync is sent once per connection', id));
      return;
    }
    this.phase = 'syncing';
    clearTimeout(this.syncTimer);
    try {
      const stored = await this.host.storedCursors(this.deviceId);
      let pageToken = '';
      do {
        const token = pageToken;
        const page = await this.host.catchUpSlot(() => this.host.chat.listChats(this.chatActor, token, 100));
        for (const chat of page.chats) {
          this.noteChat(chat.chatId);
          const from = cursors[chat.chatId] ?? stored[chat.chatId] ?? 0;
          const sent = Number(chat.lastSeq) > from ? await this.sendHistory(chat.chatId, from) : from;
          if (sent === undefined) return;
          this.setDelivered(chat.chatId, sent);
        }
        pageToken = page.nextPageToken;
      } while (pageToken);
    } catch (err) {
      if (this.isClosed) return;
      this.logger.warn({ err: (err as Error).message, deviceId: this.deviceId }, 'catch-up failed; closing');
      this.close('unavailable');
      return;
    }
    if (this.isClosed) return;
    this.send(syncedFrame(Object.fromEntries(this.delivered ?? [])));
    this.phase = 'live';
    const held = this.pending;
    this.pending = undefined;
    for (const f of held ?? []) this.deliver(f);
  }

  /** Sends every message after `from`; returns the last seq sent (or `from`), undefined if the socket closed. */
  private async sendHistory(chatId: string, from: number): Promise<number | undefined> {
    let last = from;
    for (;;) {
      const after = last;
      const page = await this.host.catchUpSlot(() => this.host.chat.listMessagesAfter(this.chatActor, chatId, after, PAGE));
      for (const m of page.messages) {
        const seq = Number(m.seq);
        if (seq <= last) continue;
        if (!(await this.sendPaced(storedFrame(m)))) return undefined;
        last = seq;
      }
      if (!page.hasMore || page.messages.length === 0) return last;
    }
  }

  private ordered(chatId: string, seq: number, data: string | Buffer): void {
    this.noteChat(chatId);
    const d = this.delivered?.get(chatId);
    if (d !== undefined && seq <= d) return; // already sent (history, redelivery or a second route)
    if (!this.filling?.has(chatId) && (d === undefined ? seq === 1 : seq === d + 1)) {
      if (this.send(data)) this.setDelivered(chatId, seq);
      this.releaseAhead(chatId);
      return;
    }
    const ahead = (this.ahead ??= new Map());
    let held = ahead.get(chatId);
    if (!held) ahead.set(chatId, (held = new Map()));
    held.set(seq, data);
    if (held.size > this.settings.maxPendingFrames) {
      this.slow();
      return;
    }
    // A chat this socket has never seen (joined or created after sync): fetch at once.
    if (d === undefined) void this.fillGap(chatId);
    else if (!this.gapTimers?.has(chatId) && !this.filling?.has(chatId) && !this.fillQueued?.has(chatId)) {
      (this.gapTimers ??= new Map()).set(chatId, setTimeout(() => void this.fillGap(chatId), this.settings.reorderWaitMs));
    }
  }

  private releaseAhead(chatId: string): void {
    const held = this.ahead?.get(chatId);
    if (!held) return;
    let d = this.delivered?.get(chatId) ?? 0;
    for (let next = held.get(d + 1); next !== undefined; next = held.get(d + 1)) {
      held.delete(d + 1);
      if (!this.send(next)) return;
      d += 1;
      this.setDelivered(chatId, d);
    }
    for (const s of held.keys()) if (s <= d) held.delete(s);
    if (held.size === 0) {
      this.ahead?.delete(chatId);
      clearTimeout(this.gapTimers?.get(chatId));
      this.gapTimers?.delete(chatId);
    }
  }

  /**
   * Fetches what is missing between the last seq sent and the frames held
   * ahead. Fills wait for one of the node's slots, so a burst of reordered
   * frames (a group on a busy node) never becomes hundreds of concurrent
   * calls to chat; a gap that closed meanwhile (the late frame came) is skipped.
   */
  private async fillGap(chatId: string): Promise<void> {
    this.gapTimers?.delete(chatId);
    if (this.filling?.has(chatId) || this.fillQueued?.has(chatId) || this.isClosed) return;
    (this.fillQueued ??= new Set()).add(chatId);
    await this.host.gapFillSlot(async () => {
      this.fillQueued?.delete(chatId);
      if (this.filling?.has(chatId) || this.isClosed || !this.ahead?.get(chatId)?.size) return;
      await this.runFill(chatId);
    });
  }

  /**
   * This node's NATS connection came back: frames other nodes routed here
   * while it was away (plain NATS, not stored) are lost, so every chat the
   * socket knows is read from chat after what it was sent, as a gap fill to
   * the end (issue #14: a message must never stay invisible to a connected
   * device until a later one reveals the gap).
   */
  resync(): void {
    if (this.phase !== 'live') return; // a sync in progress reads everything anyway
    for (const chatId of this.chats) {
      void this.host.gapFillSlot(async () => {
        if (this.filling?.has(chatId) || this.isClosed) return;
        await this.runFill(chatId, true);
      });
    }
  }

  private async runFill(chatId: string, toEnd = false): Promise<void> {
    (this.filling ??= new Set()).add(chatId);
    this.host.count('gap_fills');
    try {
      let last = this.delivered?.get(chatId) ?? 0;
      const target = toEnd ? Infinity : Math.max(...(this.ahead?.get(chatId)?.keys() ?? [last]));
      while (last < target) {
        const page = await this.host.chat.listMessagesAfter(this.chatActor, chatId, last, PAGE);
        for (const m of page.messages) {
          const seq = Number(m.seq);
          if (seq <= last) continue;
          // A frame held ahead is the same message, with this device's key already in it.
          const data = this.ahead?.get(chatId)?.get(seq) ?? storedFrame(m);
          // A stalled socket is cut off within FILL_STALL_MS, so it never holds a fill slot long.
          if (!(await this.sendPaced(data, FILL_STALL_MS))) return;
          last = seq;
          this.setDelivered(chatId, seq);
        }
        if (!page.hasMore || page.messages.length === 0) break;
      }
      if (!toEnd && last < target) this.setDelivered(chatId, target - 1); // the rest is not visible to this device
    } catch (err) {
      if (err instanceof AppError && err.kind === 'not_found') {
        this.ahead?.delete(chatId); // no longer a member
        return;
      }
      this.logger.warn({ err: (err as Error).message, chatId }, 'gap fill failed; retrying');
      if (!this.isClosed) (this.gapTimers ??= new Map()).set(chatId, setTimeout(() => void this.fillGap(chatId), 1000));
    } finally {
      this.filling?.delete(chatId);
    }
    if (!this.isClosed) this.releaseAhead(chatId);
  }
}

/**
 * The `error` frame code for a failure of a backend call: a documented code
 * passes (`chat_not_found`, `token_expired`, ...); an unreachable or slow
 * backend (Redis, NATS too) is `service_unavailable` / `timeout`; else `internal`.
 */
export function frameErrorCode(err: unknown): ErrorCode {
  if (!(err instanceof AppError)) return isDependencyUnavailable(err) ? 'service_unavailable' : 'internal';
  if (err.kind === 'internal') return 'internal';
  if ((ERROR_CODES as readonly string[]).includes(err.code)) return err.code as ErrorCode;
  if (err.kind === 'unavailable') return 'service_unavailable';
  if (err.kind === 'deadline_exceeded') return 'timeout';
  return 'internal';
}

/** The `message` frame of a message read from chat (already the device's own key). */
export function storedFrame(m: StoredMessage): string {
  return withWrappedKey(
    messageFrame({
      chatId: m.chatId,
      seq: Number(m.seq),
      messageId: m.messageId,
      senderUserId: m.senderUserId,
      senderDeviceId: m.senderDeviceId,
      epoch: Number(m.epoch),
      envelope: m.envelope,
      createdAt: m.createdAt,
    }),
    m.wrappedKey || undefined,
  );
}
