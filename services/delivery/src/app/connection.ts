// One authenticated WebSocket of one device: the I/O around its Sequencer
// (sequencer.ts, the catch-up vs. live ordering per chat). It reads client
// frames, runs catch-up and gap-fill reads against chat, hands what happens
// to the sequencer and performs what it answers (writes, paced by the
// socket's drain where history is concerned, fills through the node's slots,
// timers), plus auth expiry, pings and backpressure.
//
// Size: just past 400 lines: every socket event and every sequencer action
// has its one handler here; the ordering logic itself is sequencer.ts.
import { AppError, type Logger, type VerifiedActor } from '@bil/runtime';
import type { WebSocket } from 'ws';
import {
  CloseCodes,
  CloseReasons,
  FrameError,
  authOkFrame,
  errorFrame,
  helloFrame,
  parseClientFrame,
  pongFrame,
  syncedFrame,
  type ClientFrame,
} from '../domain/frames.js';
import { FrameLimiter } from '../domain/frame-limits.js';
import type { ChatBackend } from '../infra/backends.js';
import { frameErrorCode, pageMessage } from './backend-frames.js';
import type { DeliveryCounter } from './metrics.js';
import { Sequencer, type LiveFrame, type PageMessage, type SequencerAction } from './sequencer.js';
import type { DeviceActor, SharedPage } from './shared-pages.js';

/**
 * A frame on its way to this socket; message frames carry their chat and seq.
 * A fan-out hands every socket of the node the same Buffer (UTF-8 encoded
 * once, written as a text frame without a copy per socket).
 */
export type { LiveFrame };

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
   * reason to close the socket, only a read that still fails after the
   * retries (0.25, 0.5, 1, 2 s) is.
   */
  catchUpSlot<T>(read: () => Promise<T>): Promise<T>;
  /**
   * The next page of a group chat's history after `after` for this device,
   * read from chat once for every device of the node catching up on that
   * chat at about the same time (shared-pages.ts).
   */
  sharedPage(chatId: string, actor: DeviceActor, after: number): Promise<SharedPage>;
  count(metric: DeliveryCounter, n?: number): void;
}

const PAGE = 200;
const TEXT = { binary: false };
/** A gap fill gives up on a socket that drained nothing for this long. */
const FILL_STALL_MS = 500;
const MAX_BAD_FRAMES = 20;
let nextId = 0;

/**
 * Per-socket state is what an idle socket costs, so it is kept small (issue 18:
 * an idle authenticated socket at ≤ 2x a raw `ws` one): the sequencer's maps
 * and sets, the frame limiter and the early-frame queue exist only once
 * needed; pings come from one node-wide timer (Hub), not a timer per socket.
 */
export class Connection {
  readonly id = `${process.pid}-${++nextId}`;
  private readonly seq: Sequencer;
  private expiryTimer?: NodeJS.Timeout;
  private syncTimer?: NodeJS.Timeout;
  private torndown = false;
  private alive = true;
  private started = false;
  private badFrames = 0;
  private limiter: FrameLimiter | undefined;
  /** Frames a client sends right after the upgrade wait here until the socket is registered. */
  private early: Array<[Buffer, boolean]> | undefined;

  constructor(
    private readonly ws: WebSocket,
    public actor: VerifiedActor,
    private readonly host: ConnectionHost,
    private readonly settings: ConnectionSettings,
    private readonly logger: Logger,
  ) {
    this.seq = new Sequencer(settings);
    ws.on('message', (data, isBinary) => this.received(data as Buffer, isBinary));
    ws.on('pong', () => (this.alive = true));
    ws.on('close', () => this.teardown());
    ws.on('error', () => this.teardown());
  }

  /** Chats the device is known to belong to (from sync and live traffic). */
  get chats(): ReadonlySet<string> {
    return this.seq.chats;
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
    if (this.isClosed || !this.started) return;
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
    return this.torndown;
  }
  private get chatActor(): DeviceActor {
    return { userId: this.actor.userId, deviceId: this.actor.deviceId, sessionId: this.actor.sessionId };
  }

  /** Starts serving: hello, timers, frame handling. Call after the device is registered (presence). */
  start(): void {
    if (this.isClosed) return;
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
    if (this.torndown) return;
    this.teardown();
    this.ws.close(CloseCodes[reason], CloseReasons[reason]);
    // A peer that does not read never completes the closing handshake.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }

  /**
   * Hands a live frame to this socket (held until synced, then ordered). The
   * frame may be shared by every socket of the node message: it is read, never
   * changed. A chat's next message with nothing held is written at once
   * (Sequencer.deliverNow: no actions built).
   */
  deliver(frame: LiveFrame): void {
    if (frame.seq !== undefined && frame.chatId !== undefined && this.seq.deliverNow(frame.chatId, frame.seq)) {
      this.send(frame.data);
      return;
    }
    this.perform(this.seq.deliver(frame));
  }

  private teardown(): void {
    if (this.torndown) return;
    this.torndown = true;
    this.seq.close();
    clearTimeout(this.expiryTimer);
    clearTimeout(this.syncTimer);
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
    if (this.isClosed) return false;
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
    while (!this.isClosed && this.ws.bufferedAmount > limit) {
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
      this.host.count('rate_limited');
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
    if (!this.seq.startSync(cursors)) {
      this.send(errorFrame('already_synced', 'sync is sent once per connection', id));
      return;
    }
    clearTimeout(this.syncTimer);
    try {
      const stored = await this.host.storedCursors(this.deviceId);
      let pageToken = '';
      do {
        const token = pageToken;
        const page = await this.host.catchUpSlot(() => this.host.chat.listChats(this.chatActor, token, 100));
        for (const chat of page.chats) {
          // Groups: pages shared with the node's other devices catching up on the chat; personal chats: the device's own.
          const group = chat.type === 'CHAT_TYPE_GROUP';
          let after = this.seq.chatListed(chat.chatId, Number(chat.lastSeq), stored);
          while (after !== undefined) {
            const from = after;
            const history = group ? await this.host.sharedPage(chat.chatId, this.chatActor, from) : await this.ownPage(chat.chatId, from);
            const step = this.seq.historyPage(chat.chatId, history.messages, history.hasMore);
            for (const m of step.send) if (!(await this.sendPaced(m.frame()))) return;
            // A shared page may hold nothing for this device and still not be the last: read on after what it covered.
            after = history.hasMore ? Math.max(from, step.next ?? from, history.throughSeq) : undefined;
          }
        }
        pageToken = page.nextPageToken;
      } while (pageToken);
    } catch (err) {
      if (this.isClosed) return;
      this.logger.warn({ err: (err as Error).message, deviceId: this.deviceId }, 'catch-up failed; closing');
      this.close('unavailable');
      return;
    }
    this.perform(this.seq.syncDone());
  }

  /** One page of a chat's history read for this device alone (personal chats). */
  private async ownPage(chatId: string, after: number): Promise<{ messages: PageMessage[]; hasMore: boolean; throughSeq: number }> {
    const page = await this.host.catchUpSlot(() => this.host.chat.listMessagesAfter(this.chatActor, chatId, after, PAGE));
    const messages = page.messages.map(pageMessage);
    return { messages, hasMore: page.hasMore, throughSeq: messages.at(-1)?.seq ?? after };
  }

  /**
   * This node's NATS connection came back: frames other nodes routed here
   * while it was away (plain NATS, not stored) are lost, so every chat the
   * socket knows is read from chat after what it was sent, as a gap fill to
   * the end (issue #14: a message must never stay invisible to a connected
   * device until a later one reveals the gap).
   */
  resync(): void {
    this.perform(this.seq.resync());
  }

  /** Performs what the sequencer answered, in order; stops once the socket is closed. */
  private perform(actions: SequencerAction[]): void {
    for (const a of actions) {
      if (this.isClosed) return;
      switch (a.type) {
        case 'send':
          this.send(a.data);
          break;
        case 'synced':
          this.send(syncedFrame(a.cursors));
          break;
        case 'fill':
          void this.host.gapFillSlot(() => this.runFill(a.chatId));
          break;
        case 'wait':
          setTimeout(() => this.perform(this.seq.timeout(a.chatId, a.token)), a.ms);
          break;
        case 'close':
          this.slow();
          return;
        default: {
          const never: never = a;
          throw new Error(`unhandled action ${String(never)}`);
        }
      }
    }
  }

  /**
   * A gap fill, in one of the node's slots (so a burst of reordered frames,
   * a group on a busy node, never becomes hundreds of concurrent calls to
   * chat): reads from chat after the last seq sent, writes what is missing,
   * then releases what was held ahead.
   */
  private async runFill(chatId: string): Promise<void> {
    const fill = this.seq.beginFill(chatId);
    if (!fill) return; // the gap closed while queued (the late frame came), or a fill runs
    this.host.count('gap_fills');
    let after = fill.after;
    try {
      while (after !== undefined) {
        const page = await this.host.chat.listMessagesAfter(this.chatActor, chatId, after, PAGE);
        const step = this.seq.fillPage(chatId, page.messages.map(pageMessage), page.hasMore);
        // A stalled socket is cut off within FILL_STALL_MS, so it never holds a fill slot long.
        for (const m of step.send) if (!(await this.sendPaced(m.frame(), FILL_STALL_MS))) return;
        after = step.next;
      }
    } catch (err) {
      const gone = err instanceof AppError && err.kind === 'not_found'; // no longer a member
      if (!gone) this.logger.warn({ err: (err as Error).message, chatId }, 'gap fill failed; retrying');
      this.perform(this.seq.fillFailed(chatId, gone));
      return;
    }
    this.perform(this.seq.fillDone(chatId));
  }
}
