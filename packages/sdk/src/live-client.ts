// client.live(): the live connection of one BilClient (docs/sdk.md "Live").
// A LiveConnection (live.ts) to the gateway's `/v1/ws` with this device's
// session tokens and its cursors kept in the key store; every envelope it
// receives goes through the same code path as `messages.history` (verify,
// decrypt, replay guard, group epoch chain fetched when an envelope names a
// newer epoch), a hole in the seqs is filled from history, and the results
// come out as typed events.
import type { DecryptedMessage, HistoryMessage, MessagesApi, MessageUpdate, UndecryptableMessage } from './chats.js';
import type { IgnoredContent } from './chat/content-state.js';
import { SessionEndedError } from './errors.js';
import { TypedEmitter, type Listener } from './events.js';
import { LiveConnection, type CursorStore, type LiveEnvelope, type WebSocketFactory } from './live.js';
import type { MessageJson } from './wire.js';

export interface LiveClientOptions {
  /** Ack each message to the server once it has been handled (default true); otherwise call `ack()`. */
  autoAck?: boolean;
  /** Connect at once (default true); otherwise call `start()`. */
  start?: boolean;
  /** Defaults to the global WebSocket, else the `ws` package. */
  webSocket?: WebSocketFactory;
  /** First reconnect delay in ms (doubled per failed attempt, with jitter; default 500). */
  initialBackoffMs?: number;
  /** Longest reconnect delay in ms (default 3 000): the most a client waits once the server is back. */
  maxBackoffMs?: number;
  /** Send a fresh token in-band this long before the current one expires (default 60 000 ms). */
  refreshBeforeMs?: number;
  /** Acks are batched for this long (default 100 ms). */
  ackDelayMs?: number;
}

export interface LiveReceiptEvent {
  readonly chatId: string;
  readonly userId: string;
  /** Live receipts only. */
  readonly deviceId?: string;
  readonly seq: number;
  /** True: the stored read marker moved (`messages.markRead`); false: a live `read()`, not stored. */
  readonly durable: boolean;
}

export interface LiveTypingEvent {
  readonly chatId: string;
  readonly userId: string;
  readonly deviceId: string;
  readonly active: boolean;
}

/** A group key change: `epoch_published`, `epoch_keys_added`, `epoch_rotation_required`. */
export interface LiveEpochEvent {
  readonly chatId: string;
  readonly event: string;
  /** The epoch the event names, if any. */
  readonly epoch?: number;
  /** The frame's `data` as sent: snake_case, enums lower case, integers as numbers (docs/ws-protocol.md, "chat_event data"). */
  readonly data: Readonly<Record<string, unknown>>;
}

export interface LiveMessageDeletedEvent {
  readonly chatId: string;
  readonly seq: number;
  readonly messageId: string;
  readonly senderUserId: string;
  readonly reason: 'deleted_by_sender' | 'removed_by_server';
}

/** `chat_created`, `member_added`, `member_removed`, `role_changed`, `chat_deleted`. */
export interface LiveMembershipEvent {
  readonly chatId: string;
  readonly event: string;
  /** The member the event is about, if any. */
  readonly userId?: string;
  /** The frame's `data` as sent: snake_case, enums lower case, integers as numbers (docs/ws-protocol.md, "chat_event data"). */
  readonly data: Readonly<Record<string, unknown>>;
}

export interface LiveClientEvents {
  /** A message that decrypted and verified (also this account's own), in seq order per chat; reactions and edits come as `updated`. */
  message: DecryptedMessage;
  /** A reaction or an edit changed a message this device has seen: its current text, edit history and reactions. */
  updated: MessageUpdate;
  /** An edit this client refused (`not_own_message`: not the target's sender; `not_editable`: not a text message). */
  ignored: IgnoredContent;
  /** One marker for every failure (tampered, replayed, unverified sender, no key); the cursor moves on. */
  undecryptable: UndecryptableMessage;
  /** Seqs that did not arrive live; they are fetched from history and emitted before the message after them. */
  gap: { readonly chatId: string; readonly from: number; readonly to: number };
  /** Everything missed while away has been emitted; live messages follow. */
  synced: { readonly cursors: Readonly<Record<string, number>> };
  receipt: LiveReceiptEvent;
  typing: LiveTypingEvent;
  presence: { readonly userId: string; readonly online: boolean };
  epoch: LiveEpochEvent;
  membership: LiveMembershipEvent;
  /**
   * A message was deleted for everyone (or the chat's timer changed: see `membership`, event `disappearing_timer_set`).
   * `reason` is `deleted_by_sender` only when the sender's signed tombstone verified; otherwise `removed_by_server`.
   */
  'message-deleted': LiveMessageDeletedEvent;
  /** A sender's identity key differs from the pin: its devices are not trusted until accepted. */
  'safety-number-changed': { readonly userId: string; readonly previousIdentityKey: string; readonly currentIdentityKey: string };
  /** The socket closed; `reconnect: false` means for good (4003 revoked, 4004, or the session ended). */
  disconnected: { readonly code: number; readonly reason: string; readonly reconnect: boolean };
  /** A reconnect is scheduled. */
  reconnecting: { readonly attempt: number; readonly delayMs: number };
  /** The connection's state: `connecting`, `syncing` (catching up), `live`, `waiting` (to reconnect) or `closed`. */
  state: { readonly state: 'connecting' | 'syncing' | 'live' | 'waiting' | 'closed' };
  /** The server answered a frame with an error. */
  error: { readonly code: string; readonly message: string };
  /** A digest this device asked for is `ready` (`client.digest()` picks it up at once) or `failed` (with the reason, as in `DigestFailedError`). */
  digest: { readonly requestId: string; readonly status: 'ready' | 'failed'; readonly chatIds: readonly string[]; readonly reason?: string };
  /** A member switched digests off for a chat (`enabled: false`), or the last switch-off was withdrawn. */
  'digest-policy': { readonly chatId: string; readonly userId: string; readonly enabled: boolean; readonly disabledByCount: number };
}

/** What the live client needs from BilClient (wired in `BilClient.live`). */
export interface LiveClientDeps {
  readonly baseUrl: string;
  /** A valid access token of the session (refreshed when due). */
  accessToken(): Promise<string>;
  /** Refreshes the session now and returns the new access token. */
  refreshToken(): Promise<string>;
  /** This device and its stored cursors. */
  profile(): Promise<{ userId: string; deviceId: string; cursors?: Record<string, number> }>;
  /** Persists cursors (merged with the stored ones, only forwards). */
  saveCursors(cursors: Record<string, number>): Promise<void>;
  readonly messages: MessagesApi;
  /** Re-reads a user's devices against the pin (emits the client's `safety-number-changed` when it differs). */
  checkContact(userId: string): Promise<unknown>;
  /** The client's `safety-number-changed`, already once per change: the live client passes it on as it is. */
  onSafetyNumberChanged(listener: Listener<LiveClientEvents['safety-number-changed']>): () => void;
  /** Wakes a `client.digest()` waiting for this request. */
  digestSettled(requestId: string): void;
  /** For a reaction or edit message: the changed message, or the refusal (undefined: its target not seen yet). */
  contentUpdate(h: HistoryMessage): { update: MessageUpdate } | { ignored: IgnoredContent } | undefined;
  /** A message older than its chat's verified timer: not emitted (the server should not have sent it). */
  expired?(h: HistoryMessage): boolean;
  /** Verifies a chat's timer again after a `disappearing_timer_set` (the client raises `timer-alert` if needed). */
  checkTimer?(chatId: string): Promise<void>;
}

/** Seqs per chat remembered as shown beyond a gap (the connection keeps as many ahead). */
const MAX_SHOWN_AHEAD = 1000;

/** The live connection of one device: see `BilClient.live()`. */
export class LiveClient {
  readonly #deps: LiveClientDeps;
  readonly #conn: LiveConnection<HistoryMessage>;
  readonly #events = new TypedEmitter<LiveClientEvents>();
  #cursors: Record<string, number> = {};
  /** The token last handed to the connection, and whether the socket is open (a call then is a renewal). */
  #lastToken = '';
  #open = false;
  #detach: () => void;
  /** Per chat, seqs already emitted above the cursor (live, past a gap history had not filled). */
  readonly #shownAhead = new Map<string, Set<number>>();
  /** Senders whose devices are being checked against their pins. */
  readonly #checking = new Set<string>();

  constructor(deps: LiveClientDeps, options: LiveClientOptions = {}) {
    this.#deps = deps;
    const cursors: CursorStore = {
      load: async () => {
        const stored = (await deps.profile()).cursors ?? {};
        for (const [chatId, seq] of Object.entries(stored)) this.#cursors[chatId] = Math.max(this.#cursors[chatId] ?? 0, seq);
        return { ...this.#cursors };
      },
      save: (chatId, seq) => this.#saveCursor(chatId, seq),
    };
    this.#conn = new LiveConnection<HistoryMessage>({
      baseUrl: deps.baseUrl,
      accessToken: () => this.#token(),
      cursors,
      decrypt: (m) => this.#receive(m),
      fatalError: (err) => (err instanceof SessionEndedError ? err.code : undefined),
      ...(options.webSocket ? { webSocket: options.webSocket } : {}),
      ...(options.initialBackoffMs !== undefined ? { initialBackoffMs: options.initialBackoffMs } : {}),
      ...(options.maxBackoffMs !== undefined ? { maxBackoffMs: options.maxBackoffMs } : {}),
      ...(options.refreshBeforeMs !== undefined ? { refreshBeforeMs: options.refreshBeforeMs } : {}),
      ...(options.ackDelayMs !== undefined ? { ackDelayMs: options.ackDelayMs } : {}),
      autoAck: options.autoAck ?? true,
    });
    const c = this.#conn;
    c.on('message', (m) => this.#emitResult(m.value));
    // decrypt never throws (failures are markers); this covers a bug or a lost key store.
    c.on('undecryptable', (m) => this.#events.emit('undecryptable', failed(m)));
    c.on('gap', (g) => this.#events.emit('gap', g));
    c.on('synced', (s) => this.#events.emit('synced', s));
    c.on('receipt', (r) => this.#events.emit('receipt', r));
    c.on('typing', (t) => this.#events.emit('typing', t));
    c.on('presence', (p) => this.#events.emit('presence', p));
    c.on('error', (e) => this.#events.emit('error', e));
    c.on('digest', (d) => {
      deps.digestSettled(d.requestId);
      this.#events.emit('digest', d);
    });
    c.on('digestPolicy', (p) => this.#events.emit('digest-policy', p));
    c.on('keys', (k) => {
      // A number (docs/ws-protocol.md); a digit string from delivery nodes older than that, mid-upgrade.
      const raw = k.data.epoch;
      const epoch = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
      this.#events.emit('epoch', { chatId: k.chatId, event: k.event, ...(Number.isSafeInteger(epoch) && epoch > 0 ? { epoch } : {}), data: k.data });
    });
    c.on('chat', (e) => {
      if (e.event === 'message_deleted') {
        void this.#deleted(e.chatId, e.data);
        return;
      }
      if (e.event === 'disappearing_timer_set') this.#deps.checkTimer?.(e.chatId).catch(() => undefined);
      const userId = typeof e.data.user_id === 'string' ? e.data.user_id : undefined;
      this.#events.emit('membership', { chatId: e.chatId, event: e.event, ...(userId ? { userId } : {}), data: e.data });
    });
    c.on('disconnected', (d) => {
      this.#open = false;
      this.#events.emit('disconnected', d);
    });
    c.on('state', (s) => {
      if (s.state === 'syncing' || s.state === 'live') this.#open = true;
      else this.#open = false;
      if (s.state === 'waiting') this.#events.emit('reconnecting', { attempt: s.attempt ?? 0, delayMs: s.delayMs ?? 0 });
      this.#events.emit('state', { state: s.state });
    });
    this.#detach = deps.onSafetyNumberChanged((e) => this.#events.emit('safety-number-changed', e));
    if (options.start ?? true) this.start();
  }

  on<K extends keyof LiveClientEvents>(type: K, listener: Listener<LiveClientEvents[K]>): () => void {
    return this.#events.on(type, listener);
  }

  once<K extends keyof LiveClientEvents>(type: K, listener: Listener<LiveClientEvents[K]>): () => void {
    return this.#events.once(type, listener);
  }

  off<K extends keyof LiveClientEvents>(type: K, listener: Listener<LiveClientEvents[K]>): void {
    this.#events.off(type, listener);
  }

  /** Connects (again after close()); keeps reconnecting with backoff until close() or a final close. */
  start(): void {
    this.#detach();
    this.#detach = this.#deps.onSafetyNumberChanged((e) => this.#events.emit('safety-number-changed', e));
    this.#conn.start();
  }

  /** Closes the socket (code 1000) and stops reconnecting; pending acks are sent first. */
  close(): void {
    this.#detach();
    this.#detach = () => undefined;
    this.#conn.close();
  }

  /** Shows "typing…" to the chat's other members (`active: false` to stop). */
  typing(chatId: string, active = true): void {
    this.#conn.typing(chatId, active);
  }

  /** A live read receipt to the other members (not stored: `messages.markRead` moves the read marker). */
  read(chatId: string, seq: number): void {
    this.#conn.read(chatId, seq);
  }

  /** Tells the server this device processed the chat up to `seq` (automatic unless `autoAck: false`). */
  ack(chatId: string, seq: number): void {
    this.#conn.ack(chatId, seq);
  }

  /** Opt in to online/offline of users sharing a chat with this account. */
  subscribePresence(userIds: string[]): void {
    this.#conn.subscribePresence(userIds);
  }

  /** The last seq handled per chat. */
  cursors(): Readonly<Record<string, number>> {
    return { ...this.#cursors };
  }

  // ---- internals ------------------------------------------------------------

  /** On connect: the session's valid token; on a renewal while open: a new one. */
  async #token(): Promise<string> {
    let token = await this.#deps.accessToken();
    if (this.#open && token === this.#lastToken) token = await this.#deps.refreshToken();
    this.#lastToken = token;
    return token;
  }

  async #saveCursor(chatId: string, seq: number): Promise<void> {
    if (seq <= (this.#cursors[chatId] ?? 0)) return;
    this.#cursors[chatId] = seq;
    const shown = this.#shownAhead.get(chatId);
    if (shown) for (const s of shown) if (s <= seq) shown.delete(s);
    await this.#deps.saveCursors({ [chatId]: seq });
  }

  /** One delivered envelope: first the seqs it skipped (from history), then itself. */
  async #receive(m: LiveEnvelope): Promise<HistoryMessage> {
    const cursor = this.#cursors[m.chatId];
    if (cursor !== undefined && m.seq > cursor + 1) await this.#fillGap(m.chatId, cursor, m.seq - 1);
    const opened = await this.#open1(m);
    // Shown beyond a gap history could not fill yet (history unavailable): the next fill must not show it again.
    const after = this.#cursors[m.chatId];
    if (after !== undefined && m.seq > after) {
      const shown = this.#shownAhead.get(m.chatId) ?? new Set<number>();
      if (shown.size < MAX_SHOWN_AHEAD) shown.add(m.seq);
      this.#shownAhead.set(m.chatId, shown);
    }
    return opened;
  }

  async #open1(m: LiveEnvelope): Promise<HistoryMessage> {
    const me = await this.#deps.profile();
    if (m.epoch === 0 && m.wrappedKey === undefined && m.senderDeviceId === me.deviceId) {
      // This device's own message without its key copy (delivery sends it, docs/ws-protocol.md; an older server didn't): history has it.
      try {
        const page = await this.#deps.messages.history(m.chatId, { after: m.seq - 1, limit: 1, includeUpdates: true });
        const found = page.messages.find((h) => h.seq === m.seq);
        if (found) return found;
      } catch {
        // fall through: marked undecryptable below
      }
    }
    let envelope: unknown = m.envelope;
    let tombstone: unknown;
    try {
      envelope = m.removed ? undefined : JSON.parse(m.envelope);
      tombstone = m.removed?.tombstone ? JSON.parse(m.removed.tombstone) : undefined;
    } catch {
      // left as text: fails verification uniformly
    }
    const json = {
      chat_id: m.chatId,
      seq: m.seq,
      message_id: m.messageId,
      sender_user_id: m.senderUserId,
      sender_device_id: m.senderDeviceId,
      envelope,
      wrapped_key: m.wrappedKey ?? '',
      epoch: m.epoch,
      created_at: m.createdAt,
      removed: m.removed !== undefined,
      expires_at: '',
      ...(tombstone ? { tombstone } : {}),
    } as MessageJson;
    return this.#deps.messages.decrypt(json);
  }

  /** A live message_deleted: the tombstone is checked the way history checks it (Reader), then reported. */
  async #deleted(chatId: string, data: Readonly<Record<string, unknown>>): Promise<void> {
    const text = (k: string) => (typeof data[k] === 'string' ? (data[k] as string) : '');
    let tombstone: unknown;
    try {
      tombstone = JSON.parse(text('tombstone'));
    } catch {
      tombstone = undefined;
    }
    const seq = typeof data.seq === 'number' ? data.seq : 0;
    const json = {
      chat_id: chatId,
      seq,
      message_id: text('message_id'),
      sender_user_id: text('sender_user_id'),
      sender_device_id: '',
      wrapped_key: '',
      epoch: 0,
      created_at: text('occurred_at'),
      removed: true,
      expires_at: '',
      envelope: undefined,
      ...(tombstone ? { tombstone } : {}),
    } as MessageJson;
    let reason: LiveMessageDeletedEvent['reason'] = 'removed_by_server';
    try {
      const h = await this.#deps.messages.decrypt(json);
      if (!h.ok && h.error === 'deleted_by_sender') reason = 'deleted_by_sender';
    } catch {
      // unverifiable: removed by the server
    }
    this.#events.emit('message-deleted', { chatId, seq, messageId: json.message_id, senderUserId: json.sender_user_id, reason });
  }

  /** Emits seqs `after+1 … to` of a chat from history, in order. */
  async #fillGap(chatId: string, after: number, to: number): Promise<void> {
    let next = after;
    // Taken now: moving the cursor below forgets them.
    const shown = new Set(this.#shownAhead.get(chatId) ?? []);
    try {
      while (next < to) {
        const page = await this.#deps.messages.history(chatId, { after: next, limit: Math.min(100, to - next), includeUpdates: true });
        const batch = page.messages.filter((h) => h.seq > next && h.seq <= to);
        if (batch.length === 0) break;
        for (const h of batch) {
          if (!shown.has(h.seq)) this.#emitResult(h);
          next = h.seq;
          await this.#saveCursor(chatId, h.seq);
          await this.#conn.processed(chatId, h.seq);
        }
        if (!page.hasMore) break;
      }
    } catch {
      // History unreachable: the rest of the gap stays reported (gap event); the cursor waits at it until a catch-up fills it.
    }
  }

  #emitResult(h: HistoryMessage): void {
    if (this.#deps.expired?.(h)) return;
    if (h.ok && (h.content?.kind === 'reaction' || h.content?.kind === 'edit')) {
      const r = this.#deps.contentUpdate(h);
      if (r && 'update' in r) this.#events.emit('updated', r.update);
      else if (r) this.#events.emit('ignored', r.ignored);
      return;
    }
    if (h.ok) {
      this.#events.emit('message', h);
      return;
    }
    this.#events.emit('undecryptable', h);
    // A personal message that fails may come from a contact whose identity key changed.
    if (h.epoch === 0 && !this.#checking.has(h.senderUserId)) {
      const userId = h.senderUserId;
      this.#checking.add(userId);
      void this.#deps
        .checkContact(userId)
        .catch(() => undefined)
        .finally(() => this.#checking.delete(userId));
    }
  }
}

function failed(m: LiveEnvelope): UndecryptableMessage {
  return {
    ok: false,
    error: 'cannot_decrypt',
    chatId: m.chatId,
    seq: m.seq,
    messageId: m.messageId,
    senderUserId: m.senderUserId,
    senderDeviceId: m.senderDeviceId,
    epoch: m.epoch,
    createdAt: m.createdAt,
  };
}
