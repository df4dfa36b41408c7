// The live connection (docs/ws-protocol.md): one WebSocket to `/v1/ws` that
// authenticates with the access token as a subprotocol (works in browsers and
// Node), resumes from the device's cursors, hands each envelope to a decrypt
// function (BilClient plugs in decryption, signature checks and its replay
// guard), detects gaps and duplicates by seq, acks what it processed, renews
// the token in-band before it expires, and reconnects with the SDK's one
// backoff (chat/retry.ts: jittered, capped at 3 s, reset once synced). It
// depends on nothing but a WebSocket implementation: the global one where
// there is one, else the `ws` package, loaded lazily.
import { OUTAGE_BACKOFF, backoffDelay } from './chat/retry.js';
import { TypedEmitter } from './events.js';

import type { CursorStore } from './live-cursors.js';

export { MemoryCursorStore, type CursorStore } from './live-cursors.js';

/** A message as delivered, before decryption. */
export interface LiveEnvelope {
  chatId: string;
  seq: number;
  messageId: string;
  senderUserId: string;
  senderDeviceId: string;
  epoch: number;
  /** The envelope's JSON text. */
  envelope: string;
  /** This device's wrapped content key (personal chats); absent for groups and for the sender's own device. */
  wrappedKey?: string;
  createdAt: string;
  /** Catch-up of a removed message (deleted for everyone, or expired): no envelope; the tombstone's JSON text, "" when none. */
  removed?: { tombstone: string };
}

export interface LiveEvents<M> {
  /** A message that decrypted and verified, in seq order per chat. */
  message: LiveEnvelope & { value: M };
  /** A message the decrypt function refused (tampered, replayed, not for this device…); the cursor still moves on. */
  undecryptable: LiveEnvelope & { error: unknown };
  /** Seqs that never arrived (reported, then skipped). */
  gap: { chatId: string; from: number; to: number };
  /** Every message missed while away has been handed over; live ones follow. */
  synced: { cursors: Record<string, number> };
  receipt: { chatId: string; userId: string; deviceId?: string; seq: number; durable: boolean };
  typing: { chatId: string; userId: string; deviceId: string; active: boolean };
  presence: { userId: string; online: boolean };
  /** Membership changes and chat lifecycle (`chat_created`, `member_added`, `member_removed`, `chat_deleted`, `role_changed`). */
  chat: { event: string; chatId: string; data: Record<string, unknown> };
  /** Group key changes (`epoch_published`, `epoch_keys_added`, `epoch_rotation_required`): refetch the epochs. */
  keys: { event: string; chatId: string; data: Record<string, unknown> };
  /** A digest request of this device finished: `ready` (fetch the sealed results) or `failed` (with the reason). */
  digest: { requestId: string; status: 'ready' | 'failed'; chatIds: string[]; reason?: string };
  /** A member switched digests off (or withdrew that) for a chat: offer digests only when `enabled`. */
  digestPolicy: { chatId: string; userId: string; enabled: boolean; disabledByCount: number };
  state: { state: 'connecting' | 'syncing' | 'live' | 'waiting' | 'closed'; attempt?: number; delayMs?: number };
  /** The server ended the connection for good (revoked device or session, token of another device). */
  ended: { code: number; reason: string };
  /** The socket closed (or could not open); `reconnect` tells whether a reconnect follows. */
  disconnected: { code: number; reason: string; reconnect: boolean };
  error: { code: string; message: string };
}

/** The subset of the WHATWG WebSocket this module uses (browsers, Node 22+, `ws`). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketFactory = (url: string, protocols: string[]) => WebSocketLike;

export interface LiveConnectionOptions<M> {
  /** The API's base URL, e.g. `https://chat.example.com` (`/v1/ws` is appended, http→ws). */
  baseUrl: string;
  /** A valid access token for this device (called on every connect and before expiry). */
  accessToken: () => Promise<string>;
  cursors: CursorStore;
  decrypt: (message: LiveEnvelope) => Promise<M>;
  /** Defaults to the global WebSocket, else the `ws` package. */
  webSocket?: WebSocketFactory;
  /** First reconnect delay (doubled per failed attempt, with jitter; default 500 ms). */
  initialBackoffMs?: number;
  /** Longest reconnect delay (default 3 000 ms): the most a client waits once the server is back. */
  maxBackoffMs?: number;
  /** Send a fresh token this long before the current one expires. */
  refreshBeforeMs?: number;
  /** Acks are batched for this long. */
  ackDelayMs?: number;
  /** Ack each message once handled (default true); otherwise call ack(). */
  autoAck?: boolean;
  /** Names an error of `accessToken` after which reconnecting can't help (e.g. the session ended): the connection ends with code 4003 and this reason. */
  fatalError?: (error: unknown) => string | undefined;
  random?: () => number;
}

/** Most live frames remembered per chat beyond a gap. */
const MAX_AHEAD = 1024;

/** Close codes after which reconnecting can't help. */
const FINAL_CLOSE_CODES = new Set([4003, 4004]);

export class LiveConnection<M = unknown> extends TypedEmitter<LiveEvents<M>> {
  #ws?: WebSocketLike;
  #cursors: Record<string, number> = {};
  #queue: Promise<void> = Promise.resolve();
  #attempt = 0;
  #stopped = true;
  #retryTimer?: ReturnType<typeof setTimeout>;
  #refreshTimer?: ReturnType<typeof setTimeout>;
  #ackTimer?: ReturnType<typeof setTimeout>;
  #acks = new Map<string, number>();
  /** After `synced`: frames are live pushes, which move a cursor only one seq at a time. */
  #live = false;
  /** Per chat, seqs of live frames shown beyond a gap: the cursor waits for the gap to be filled (at the latest, by the next catch-up). */
  readonly #ahead = new Map<string, Set<number>>();
  readonly #opts: Required<Omit<LiveConnectionOptions<M>, 'webSocket' | 'fatalError'>> & Pick<LiveConnectionOptions<M>, 'webSocket' | 'fatalError'>;

  constructor(opts: LiveConnectionOptions<M>) {
    super();
    this.#opts = {
      initialBackoffMs: OUTAGE_BACKOFF.initialMs,
      maxBackoffMs: OUTAGE_BACKOFF.maxMs,
      refreshBeforeMs: 60_000,
      ackDelayMs: 100,
      autoAck: true,
      random: Math.random,
      ...opts,
    };
  }

  /** The WebSocket URL for a base URL. */
  static url(baseUrl: string): string {
    const u = new URL('/v1/ws', baseUrl);
    u.protocol = u.protocol === 'https:' ? 'wss:' : u.protocol === 'http:' ? 'ws:' : u.protocol;
    return u.toString();
  }

  /** Connects (and keeps reconnecting until close()). */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    void this.#connect();
  }

  close(): void {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refreshTimer);
    this.#flushAcks();
    this.#ws?.close(1000, 'bye');
    this.#ws = undefined;
    this.emit('state', { state: 'closed' });
  }

  typing(chatId: string, active: boolean): void {
    this.#send({ type: 'typing', chat_id: chatId, active });
  }

  /** A live read receipt to the other members (not stored: mark read through the API for that). */
  read(chatId: string, seq: number): void {
    this.#send({ type: 'read', chat_id: chatId, seq });
  }

  /** Tells the server this device processed the chat up to `seq` (batched with the automatic acks). */
  ack(chatId: string, seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 1 || seq <= (this.#acks.get(chatId) ?? 0)) return;
    this.#acks.set(chatId, seq);
    this.#ackTimer ??= setTimeout(() => this.#flushAcks(), this.#opts.ackDelayMs);
  }

  subscribePresence(userIds: string[]): void {
    this.#send({ type: 'presence_subscribe', user_ids: userIds });
  }

  #send(frame: unknown): void {
    if (this.#ws && this.#ws.readyState === 1) this.#ws.send(JSON.stringify(frame));
  }

  async #factory(): Promise<WebSocketFactory> {
    if (this.#opts.webSocket) return this.#opts.webSocket;
    const Native = (globalThis as { WebSocket?: new (url: string, protocols: string[]) => WebSocketLike }).WebSocket;
    if (Native) return (url, protocols) => new Native(url, protocols);
    const name = 'ws';
    const mod = (await import(/* @vite-ignore */ name)) as { default: new (url: string, protocols: string[]) => WebSocketLike };
    return (url, protocols) => new mod.default(url, protocols);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    this.emit('state', { state: 'connecting', attempt: this.#attempt });
    let ws: WebSocketLike;
    try {
      const [factory, token, cursors] = await Promise.all([this.#factory(), this.#opts.accessToken(), this.#opts.cursors.load()]);
      this.#cursors = { ...cursors };
      if (this.#stopped) return;
      ws = factory(LiveConnection.url(this.#opts.baseUrl), ['bil.v1', `bil.token.${token}`]);
    } catch (error) {
      const fatal = this.#opts.fatalError?.(error);
      if (fatal !== undefined && !this.#stopped) {
        this.#stopped = true;
        this.emit('disconnected', { code: 4003, reason: fatal, reconnect: false });
        this.emit('ended', { code: 4003, reason: fatal });
        this.emit('state', { state: 'closed' });
        return;
      }
      this.emit('disconnected', { code: 1006, reason: 'connect_failed', reconnect: !this.#stopped });
      this.#retry();
      return;
    }
    this.#ws = ws;
    ws.onmessage = (ev) => {
      const text = typeof ev.data === 'string' ? ev.data : new TextDecoder().decode(ev.data as ArrayBuffer);
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return;
      }
      this.#queue = this.#queue.then(() => this.#onFrame(ws, frame)).catch(() => undefined);
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      clearTimeout(this.#refreshTimer);
      this.#flushAcks();
      if (this.#stopped) return;
      const final = FINAL_CLOSE_CODES.has(ev.code);
      this.emit('disconnected', { code: ev.code, reason: ev.reason, reconnect: !final });
      if (final) {
        this.#stopped = true;
        this.emit('ended', { code: ev.code, reason: ev.reason });
        this.emit('state', { state: 'closed' });
        return;
      }
      this.#retry();
    };
    ws.onerror = () => undefined;
  }

  #retry(): void {
    if (this.#stopped) return;
    // Reset to the first delay once a connection is healthy (`synced`).
    const delayMs = backoffDelay(this.#attempt, { initialMs: this.#opts.initialBackoffMs, maxMs: this.#opts.maxBackoffMs }, this.#opts.random);
    this.#attempt += 1;
    this.emit('state', { state: 'waiting', attempt: this.#attempt, delayMs });
    this.#retryTimer = setTimeout(() => void this.#connect(), delayMs);
  }

  async #onFrame(ws: WebSocketLike, f: Record<string, unknown>): Promise<void> {
    if (this.#ws !== ws) return;
    switch (f.type) {
      case 'hello':
        this.#live = false;
        this.emit('state', { state: 'syncing' });
        this.#scheduleRefresh(ws, Number(f.expires_at));
        ws.send(JSON.stringify({ type: 'sync', cursors: this.#cursors }));
        return;
      case 'auth_ok':
        this.#scheduleRefresh(ws, Number(f.expires_at));
        return;
      case 'message':
        return this.#onMessage(f);
      case 'synced':
        this.#live = true;
        this.#attempt = 0;
        this.emit('synced', { cursors: { ...this.#cursors } });
        this.emit('state', { state: 'live' });
        return;
      case 'receipt':
        this.emit('receipt', {
          chatId: String(f.chat_id),
          userId: String(f.user_id),
          deviceId: typeof f.device_id === 'string' ? f.device_id : undefined,
          seq: Number(f.seq),
          durable: f.durable === true,
        });
        return;
      case 'typing':
        this.emit('typing', { chatId: String(f.chat_id), userId: String(f.user_id), deviceId: String(f.device_id), active: f.active === true });
        return;
      case 'presence':
        this.emit('presence', { userId: String(f.user_id), online: f.online === true });
        return;
      case 'chat_event': {
        const event = String(f.event);
        const payload = { event, chatId: String(f.chat_id), data: (f.data ?? {}) as Record<string, unknown> };
        this.emit(event.startsWith('epoch_') ? 'keys' : 'chat', payload);
        return;
      }
      case 'digest':
        if (f.event === 'ready' || f.event === 'failed') {
          this.emit('digest', {
            requestId: String(f.request_id),
            status: f.event,
            chatIds: Array.isArray(f.chat_ids) ? f.chat_ids.map(String) : [],
            ...(typeof f.reason === 'string' ? { reason: f.reason } : {}),
          });
        } else if (f.event === 'policy_changed') {
          this.emit('digestPolicy', { chatId: String(f.chat_id), userId: String(f.user_id), enabled: f.enabled === true, disabledByCount: Number(f.disabled_by_count) || 0 });
        }
        return;
      case 'error':
        this.emit('error', { code: String(f.code), message: String(f.message) });
        return;
      default:
        return; // newer servers may add frame types
    }
  }

  async #onMessage(f: Record<string, unknown>): Promise<void> {
    const m: LiveEnvelope = {
      chatId: String(f.chat_id),
      seq: Number(f.seq),
      messageId: String(f.message_id),
      senderUserId: String(f.sender_user_id),
      senderDeviceId: String(f.sender_device_id),
      epoch: Number(f.epoch ?? 0),
      envelope: String(f.envelope),
      wrappedKey: typeof f.wrapped_key === 'string' ? f.wrapped_key : undefined,
      createdAt: String(f.created_at),
      ...(f.removed === true ? { removed: { tombstone: typeof f.tombstone === 'string' ? f.tombstone : '' } } : {}),
    };
    if (!Number.isSafeInteger(m.seq) || m.seq < 1) return;
    const cursor = this.#cursors[m.chatId];
    if (cursor !== undefined && m.seq <= cursor) return; // seen before
    const ahead = this.#ahead.get(m.chatId);
    const shown = ahead?.delete(m.seq) ?? false;
    if (shown && this.#live) {
      ahead!.add(m.seq);
      return; // shown already, beyond a gap
    }
    if (!shown) {
      if (cursor !== undefined && m.seq > cursor + 1) this.emit('gap', { chatId: m.chatId, from: cursor + 1, to: m.seq - 1 });
      try {
        const value = await this.#opts.decrypt(m);
        this.emit('message', { ...m, value });
      } catch (error) {
        this.emit('undecryptable', { ...m, error });
      }
    }
    return this.#advance(m.chatId, m.seq);
  }

  /**
   * Seqs up to `seq` of a chat were handled outside this connection (a gap
   * filled from history): the cursor may move up to there.
   */
  async processed(chatId: string, seq: number): Promise<void> {
    const cursor = this.#cursors[chatId];
    if (cursor !== undefined && seq <= cursor) return;
    this.#cursors[chatId] = seq;
    await this.#advance(chatId, seq);
  }

  async #advance(chatId: string, seq: number): Promise<void> {
    const cursor = this.#cursors[chatId];
    const ahead = this.#ahead.get(chatId);
    // The seq is the server's unsigned claim: a live frame moves the cursor only
    // to the next seq, so one frame with a forged seq can't make later messages
    // look "seen before". Catch-up (before `synced`) is the server's answer to
    // "everything after the cursor", and moves it to what it delivered.
    if (this.#live && cursor !== undefined && seq > cursor + 1) {
      const set = ahead ?? new Set<number>();
      if (set.size < MAX_AHEAD) set.add(seq);
      this.#ahead.set(chatId, set);
      return;
    }
    let next = Math.max(seq, cursor ?? 0);
    while (ahead?.delete(next + 1)) next++;
    if (ahead) for (const s of ahead) if (s <= next) ahead.delete(s);
    this.#cursors[chatId] = next;
    // Not awaited: the next message doesn't wait for the store (BilClient coalesces its writes); the server is
    // acked only once the cursor is stored, so it never counts as processed what a crash would make us re-read.
    const saved = this.#opts.cursors.save(chatId, next);
    if (this.#opts.autoAck) void saved.then(() => this.ack(chatId, next), () => undefined);
  }

  #flushAcks(): void {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    for (const [chatId, seq] of this.#acks) this.#send({ type: 'ack', chat_id: chatId, seq });
    this.#acks.clear();
  }

  #scheduleRefresh(ws: WebSocketLike, expiresAt: number): void {
    clearTimeout(this.#refreshTimer);
    if (!Number.isFinite(expiresAt) || expiresAt <= 0) return;
    const lifetime = expiresAt - Date.now();
    const ms = Math.max(1000, lifetime - Math.min(this.#opts.refreshBeforeMs, lifetime / 2));
    this.#refreshTimer = setTimeout(() => {
      void this.#opts
        .accessToken()
        .then((token) => this.#ws === ws && ws.send(JSON.stringify({ type: 'auth', token })))
        .catch(() => undefined);
    }, Math.min(ms, 2 ** 31 - 1));
  }
}
