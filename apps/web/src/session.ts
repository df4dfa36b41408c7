// One unlocked device: the SDK client over the sealed IndexedDB stores, its
// live connection, and what the screens show (chats sorted by activity,
// loaded history, typing, receipts), as a small store React subscribes to
// (useSyncExternalStore). Every message goes through the SDK: it decrypts and
// verifies; this file only orders, dedupes and counts. Past 400 lines because
// it is the one place the screens' state changes (chats, history, live events,
// groups, digests, sending and the outbox); the screens only render it.
import {
  BilApiError,
  BilClient,
  BilNetworkError,
  BilTrustError,
  DEFAULT_MIN_UNREAD,
  uuidv7,
  type Chat,
  type ChatTimer,
  type TimerAlertEvent,
  type DigestMode,
  type DigestModelSettings,
  type DigestOutcome,
  type DecryptedMessage,
  type ForkAlert,
  type HistoryMessage,
  type LiveClient,
  type MessageUpdate,
  type LocalAccount,
  type SealedJsonStore,
} from '@bil/sdk';
import { applyUpdate } from './message-updates.js';
import { uploadFile } from './attachments.js';
import { currentSubscription, disablePush } from './push.js';
import { hasAppRecord, keyStores, type AppData, type Names, type Outbox } from './storage.js';
import { APPROVAL_PREFIX, REQUEST_PREFIX, decodeToken, encodeToken } from './link-token.js';

export interface ChatEntry {
  readonly chat: Chat;
  /** The newest message this device read or received, if any. */
  readonly last: HistoryMessage | null;
  readonly unread: number;
  /** The chat's last seq when the server counted `unread`; messages above it are counted here, once each. */
  readonly countedTo: number;
  /** Seqs above `countedTo` counted in `unread` (live messages can arrive out of order, or twice after a catch-up). */
  readonly countedAbove: ReadonlySet<number>;
}

export interface ChatHistory {
  readonly messages: readonly HistoryMessage[];
  /** Older messages exist before the first one loaded. */
  readonly hasMore: boolean;
  readonly loading: boolean;
  /** The oldest seq the loaded pages covered (the SDK's `span.from`, hidden messages included): the next older page starts before it. */
  readonly from?: number | null;
}

export type LiveState = 'connecting' | 'syncing' | 'live' | 'waiting' | 'closed';

export interface ViewState {
  readonly account: LocalAccount;
  readonly chats: readonly ChatEntry[];
  readonly chatsLoaded: boolean;
  readonly history: Readonly<Record<string, ChatHistory>>;
  /** Disappearing-message timers (ms) this run verified (set here, or re-verified after the live `disappearing_timer_set`); the chat list doesn't carry them. */
  readonly timers: Readonly<Record<string, number>>;
  /** Per chat, the SDK's last `timer-alert` (the server's timer differs from the verified one, or it served a bad statement). */
  readonly timerAlerts: Readonly<Record<string, TimerAlertEvent>>;
  readonly names: Readonly<Names>;
  /** Per chat: who is typing (user ids). */
  readonly typing: Readonly<Record<string, readonly string[]>>;
  /** Per chat: the highest seq the other side has read. */
  readonly readByPeer: Readonly<Record<string, number>>;
  readonly live: LiveState;
  readonly openChatId: string | null;
  /** Contacts whose identity key is not the pinned one (sending to them is refused until accepted). */
  readonly keyChanges: Readonly<Record<string, { readonly previousIdentityKey: string; readonly currentIdentityKey: string }>>;
  /** Contacts whose key change the person put off ("Not now"): the alert shows again at the next refused send. */
  readonly keyChangesLater: readonly string[];
  /** Groups whose history forked (the SDK's fork alerts): sending in them is refused until the person accepts the current history. */
  readonly forks: Readonly<Record<string, ForkAlert>>;
  /** Groups whose fork alert the person put off: it shows again at the next refused send or when the chat opens. */
  readonly forksLater: readonly string[];
  /** The server ended the live connection for good (session ended, device revoked): sign in again. */
  readonly ended: boolean;
  /** Online or not, for the people of personal chats (opt-in presence, ws-protocol.md). */
  readonly online: Readonly<Record<string, boolean>>;
  /** Per group opened on this device: its members from the verified record (their presence is subscribed to). */
  readonly groupMembers: Readonly<Record<string, readonly string[]>>;
  /** Chats opened with many unread messages: a digest is offered, and they stay unread until the person says so. */
  readonly digestOffers: Readonly<Record<string, number>>;
  /** Per chat, messages not stored yet: `sending`, or `waiting` for the network (resent with the same message id). */
  readonly pending: Readonly<Record<string, readonly PendingMessage[]>>;
}

export interface PendingMessage {
  readonly messageId: string;
  readonly text: string;
  /** The message this one replies to. */
  readonly replyTo?: string;
  readonly status: 'sending' | 'waiting';
}

const PAGE = 30;
/** Pages read at most for one "load older" when pages show nothing (all hidden), and to reach a quoted message. */
const OLDER_PAGES_PER_LOAD = 5;
const JUMP_PAGES = 10;
const quoteOf = (messages: readonly HistoryMessage[] | undefined, messageId: string): string => {
  const m = messages?.find((x) => x.messageId === messageId);
  return m?.ok ? [...m.text].slice(0, 256).join('') : '';
};
/** How long the SDK itself retries a send through an outage before the app's queue takes over (same message id). */
const OUTAGE_RETRY_MS = 5000;
const transient = (err: unknown): boolean => err instanceof BilNetworkError || (err instanceof BilApiError && err.status >= 502 && err.status <= 504);
const TYPING_MS = 6000;
/** A person whose presence was asked for and not answered yet is asked again after this long at the earliest. */
const PRESENCE_ASK_MS = 2000;
/** How often the chat list is re-read from the server while live (a safety net under the live frames). */
const LIST_CHECK_MS = 45_000;

const activity = (e: ChatEntry): number => Math.max(Date.parse(e.chat.lastActivityAt) || 0, e.last ? Date.parse(e.last.createdAt) || 0 : 0);
const byActivity = (a: ChatEntry, b: ChatEntry): number => activity(b) - activity(a);

function mergeMessages(list: readonly HistoryMessage[], more: readonly HistoryMessage[]): HistoryMessage[] {
  const bySeq = new Map<number, HistoryMessage>();
  for (const m of list) bySeq.set(m.seq, m);
  for (const m of more) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

export class Session {
  readonly client: BilClient;
  readonly #appStore: SealedJsonStore<AppData>;
  #live: LiveClient | null = null;
  /** When each person's presence was last asked for (see #askPresence). */
  readonly #presenceAskedAt = new Map<string, number>();
  #state: ViewState;
  readonly #listeners = new Set<() => void>();
  readonly #typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
  /** Re-reads the chat list now and then while live (see LIST_CHECK_MS). */
  #listCheck: ReturnType<typeof setInterval> | undefined;
  #lastTypingSent = 0;

  private constructor(client: BilClient, appStore: SealedJsonStore<AppData>, account: LocalAccount, app: AppData) {
    this.client = client;
    this.#appStore = appStore;
    // What waited to be sent when the page closed waits again (resent with the same ids once live).
    const pending = Object.fromEntries(Object.entries(app.outbox).map(([chatId, list]) => [chatId, list.map((m) => ({ ...m, status: 'waiting' as const }))]));
    this.#state = { account, chats: [], chatsLoaded: false, history: {}, timers: {}, timerAlerts: {}, names: app.names, typing: {}, readByPeer: {}, live: 'closed', openChatId: null, keyChanges: {}, keyChangesLater: [], forks: {}, forksLater: [], ended: false, online: {}, groupMembers: {}, digestOffers: {}, pending };
    client.on('timer-alert', (e) => this.#set({ timerAlerts: { ...this.#state.timerAlerts, [e.chatId]: e } }));
    client.on('safety-number-changed', (e) => {
      if (this.#state.keyChanges[e.userId]?.currentIdentityKey === e.currentIdentityKey) return;
      this.#set({ keyChangesLater: this.#state.keyChangesLater.filter((u) => u !== e.userId), keyChanges: { ...this.#state.keyChanges, [e.userId]: { previousIdentityKey: e.previousIdentityKey, currentIdentityKey: e.currentIdentityKey } } });
    });
  }

  /** Opens the sealed stores with the passphrase (WrongPassphraseError when it isn't the one); null: no device here. */
  static async unlock(passphrase: string): Promise<Session | null> {
    const stores = keyStores(passphrase);
    const client = new BilClient({ baseUrl: location.origin, keyStore: stores.profile, outageRetryMs: OUTAGE_RETRY_MS });
    const account = await client.account();
    if (!account) return null;
    return new Session(client, stores.app, account, (await stores.app.load()) ?? { names: {}, outbox: {} });
  }

  /** Wraps a client that just registered (or resumed registering) into a session. */
  static async registered(client: BilClient, stores: ReturnType<typeof keyStores>, account: LocalAccount): Promise<Session> {
    const app: AppData = { names: { [account.userId]: account.username }, outbox: {} };
    await stores.app.save(app);
    return new Session(client, stores.app, account, app);
  }

  /** A new device of an existing account, step 1: keys made here, the request to show. */
  static async linkRequest(o: { passphrase: string; deviceName: string }): Promise<{ client: BilClient; request: string; finish: (approval: string, password: string) => Promise<Session> }> {
    const stores = keyStores(o.passphrase);
    const client = new BilClient({ baseUrl: location.origin, keyStore: stores.profile, outageRetryMs: OUTAGE_RETRY_MS });
    const request = await client.devices.linkRequest({ deviceName: o.deviceName });
    return {
      client,
      request: encodeToken(REQUEST_PREFIX, request),
      finish: async (approval, password) => {
        const account = await client.devices.completeLink({ approval: decodeToken(APPROVAL_PREFIX, approval), password });
        const app: AppData = { names: { [account.userId]: account.username }, outbox: {} };
        await stores.app.save(app);
        return new Session(client, stores.app, account, app);
      },
    };
  }

  // --- the store React reads ---

  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  getState = (): ViewState => this.#state;

  #set(patch: Partial<ViewState>): void {
    this.#state = { ...this.#state, ...patch };
    for (const l of this.#listeners) l();
  }

  // --- lifecycle ---

  async signIn(password: string): Promise<void> {
    const account = await this.client.login({ password });
    this.#set({ account, ended: false });
  }

  /** Opens the live connection and loads the chat list. */
  async start(): Promise<void> {
    if (!this.#live) {
      window.addEventListener('online', this.#onOnline);
      // The list's unread counts and last messages are the server's again every LIST_CHECK_MS while
      // live and visible: live frames are the fast path, not the only one, so a missed one (a tail
      // with no later message to show the gap) is not missed for long.
      this.#listCheck = setInterval(() => {
        if (this.#state.live === 'live' && document.visibilityState === 'visible') this.#refreshSoon();
      }, LIST_CHECK_MS);
      const live = this.client.live();
      this.#live = live;
      live.on('state', ({ state }) => {
        this.#set({ live: state });
        if (state === 'live') void this.flush();
      });
      live.on('message', (m) => this.#received(m));
      live.on('undecryptable', (m) => this.#received(m));
      live.on('updated', (u) => this.#updated(u));
      live.on('message-deleted', (d) => this.#deleted(d.chatId, d.messageId, d.reason));
      live.on('membership', (e) => {
        // The event is the server's word: the timer shown is the one verified from the chat's signed statement or record.
        if (e.event === 'disappearing_timer_set') void this.#verifyTimer(e.chatId);
      });
      live.on('typing', (t) => this.#typing(t.chatId, t.userId, t.active));
      live.on('receipt', (r) => {
        if (r.userId === this.#state.account.userId) return;
        const prev = this.#state.readByPeer[r.chatId] ?? 0;
        if (r.seq > prev) this.#set({ readByPeer: { ...this.#state.readByPeer, [r.chatId]: r.seq } });
      });
      live.on('membership', () => this.#refreshSoon());
      live.on('epoch', () => this.#refreshSoon()); // a rename is a new epoch: the title comes from its record
      live.on('presence', (p) => this.#set({ online: { ...this.#state.online, [p.userId]: p.online } }));
      // A new connection starts with no presence subscriptions.
      live.on('synced', () => this.#subscribePresence(true));
      live.on('disconnected', (d) => {
        if (!d.reconnect && this.#live === live) {
          this.lock();
          this.#set({ live: 'closed', ended: true });
        }
      });
    }
    await this.refreshChats();
    void this.flush();
  }

  readonly #onOnline = (): void => void this.flush();

  /** Closes the live connection; the keys stay sealed in IndexedDB. */
  lock(): void {
    window.removeEventListener('online', this.#onOnline);
    this.#live?.close();
    this.#live = null;
    clearInterval(this.#listCheck);
    this.#listCheck = undefined;
    for (const t of this.#typingTimers.values()) clearTimeout(t);
  }

  async logout(): Promise<void> {
    this.lock();
    // A signed-out browser should not be woken: its subscription goes first (while the token still works).
    if (await currentSubscription().catch(() => null)) await disablePush(this.client).catch(() => undefined);
    await this.client.logout();
    this.#set({ account: (await this.client.account()) ?? this.#state.account });
  }

  // --- names ---

  name(userId: string): string {
    return this.#state.names[userId] ?? `user ${userId.slice(0, 8)}`;
  }

  async #learn(userId: string, username: string): Promise<void> {
    if (this.#state.names[userId] === username) return;
    const names = { ...this.#state.names, [userId]: username };
    this.#set({ names });
    await this.#saveApp();
  }

  /** Checks that `username` is the user `userId` (the directory's answer) and remembers the name. */
  async identify(userId: string, username: string): Promise<boolean> {
    const user = await this.client.contacts.find(username.trim().replace(/^@/, ''));
    if (user.userId !== userId) return false;
    await this.#learn(user.userId, user.username);
    return true;
  }

  /** Trusts exactly the key the alert showed; the new pin is unverified until the numbers are compared. */
  async acceptKeyChange(userId: string): Promise<void> {
    const change = this.#state.keyChanges[userId];
    if (!change) return;
    await this.client.contacts.acceptIdentityChange(userId, change.currentIdentityKey);
    const { [userId]: _done, ...rest } = this.#state.keyChanges;
    this.#set({ keyChanges: rest });
  }

  /** "Not now": the key-change alert goes away; sending to the contact stays refused by the SDK. */
  keyChangeLater(userId: string): void {
    this.#set({ keyChangesLater: [...this.#state.keyChangesLater.filter((u) => u !== userId), userId] });
  }

  /** Shows the SDK's fork alert of a group, if it has one (again, even if put off before). */
  async #checkFork(chatId: string): Promise<void> {
    const fork = await this.client.chats.forkAlert(chatId);
    if (!fork) return;
    this.#set({ forks: { ...this.#state.forks, [chatId]: fork }, forksLater: this.#state.forksLater.filter((c) => c !== chatId) });
  }

  /** The person compared the members with the others and accepts the server's current history: the SDK verifies and pins it anew. */
  async resolveFork(chatId: string): Promise<void> {
    await this.client.chats.resolveFork(chatId);
    const { [chatId]: _done, ...rest } = this.#state.forks;
    this.#set({ forks: rest, forksLater: this.#state.forksLater.filter((c) => c !== chatId) });
    await this.refreshChats();
  }

  /** "Not now": the fork alert goes away; sending in the group stays refused by the SDK. */
  forkLater(chatId: string): void {
    this.#set({ forksLater: [...this.#state.forksLater.filter((c) => c !== chatId), chatId] });
  }

  chatTitle(chat: Chat): string {
    if (chat.type === 'group') return chat.title || 'Group';
    return this.name(chat.peerUserId);
  }

  // --- chats ---

  async refreshChats(): Promise<void> {
    const { chats } = await this.client.chats.list({ limit: 100 });
    const old = new Map(this.#state.chats.map((e) => [e.chat.chatId, e]));
    const entries = await Promise.all(
      chats.map(async (chat): Promise<ChatEntry> => {
        const known = old.get(chat.chatId);
        let last = known?.last ?? null;
        const loaded = this.#state.history[chat.chatId]?.messages;
        if (loaded && loaded.length > 0) last = loaded[loaded.length - 1]!;
        else if (chat.lastSeq > 0 && (!last || last.seq < chat.lastSeq)) {
          const page = await this.client.messages.history(chat.chatId, { limit: 1 }).catch(() => null);
          last = page?.messages.at(-1) ?? last;
        }
        const unread = chat.chatId === this.#state.openChatId ? 0 : chat.unreadCount;
        return { chat, last, unread, countedTo: chat.lastSeq, countedAbove: new Set<number>() };
      }),
    );
    // Live messages counted while the list was loading and newer than what the server counted stay counted.
    const current = new Map(this.#state.chats.map((e) => [e.chat.chatId, e]));
    for (const [i, e] of entries.entries()) {
      const newer = [...(current.get(e.chat.chatId)?.countedAbove ?? [])].filter((seq) => seq > e.countedTo);
      if (newer.length > 0 && e.chat.chatId !== this.#state.openChatId) entries[i] = { ...e, unread: e.unread + newer.length, countedAbove: new Set(newer) };
    }
    this.#subscribePresence(false);
    const openGone = this.#state.openChatId !== null && !entries.some((e) => e.chat.chatId === this.#state.openChatId);
    this.#set({ chats: entries.sort(byActivity), chatsLoaded: true, ...(openGone ? { openChatId: null } : {}) });
  }

  /** Presence of the people of personal chats; those never answered for (refused: the connection hadn't seen the chat yet) are asked again. */
  #subscribePresence(all: boolean): void {
    const me = this.#state.account.userId;
    const members = Object.values(this.#state.groupMembers).flat();
    const peers = [...new Set([...this.#state.chats.filter((e) => e.chat.type === 'personal').map((e) => e.chat.peerUserId), ...members])].filter((u) => u !== me);
    this.#askPresence(all ? peers : peers.filter((u) => !(u in this.#state.online)), all);
  }

  /**
   * Asks delivery for these people's presence; one not answered yet is asked
   * again at most every PRESENCE_ASK_MS (unless `fresh`: a new connection has
   * no subscriptions). Without that, a burst of messages from a peer asked once
   * per message, past delivery's presence_subscribe limit, and the rate_limited
   * answers counted towards closing the socket (too_many_errors).
   */
  #askPresence(userIds: string[], fresh = false): void {
    const now = Date.now();
    const ask = fresh ? userIds : userIds.filter((u) => now - (this.#presenceAskedAt.get(u) ?? -Infinity) >= PRESENCE_ASK_MS);
    if (ask.length === 0 || !this.#live) return;
    for (const u of ask.slice(0, 200)) this.#presenceAskedAt.set(u, now);
    this.#live.subscribePresence(ask.slice(0, 200));
  }

  /** Reloads the list after a live event; a failure (offline, say) waits for the next event or reconnect. */
  #refreshSoon(): void {
    this.refreshChats().catch(() => undefined);
  }

  /** Opens (or creates) the personal chat with a user found by username. */
  async startChat(username: string): Promise<string> {
    const user = await this.client.contacts.find(username.trim().replace(/^@/, ''));
    if (user.userId === this.#state.account.userId) throw new Error('That is you: pick someone else.');
    await this.#learn(user.userId, user.username);
    const chat = await this.client.chats.createPersonal(user.userId);
    await this.refreshChats();
    await this.openChat(chat.chatId);
    return chat.chatId;
  }

  /** A group of people found by username; the SDK builds and signs its first epoch (the title is encrypted). */
  async createGroup(title: string, usernames: readonly string[]): Promise<string> {
    const members: string[] = [];
    for (const name of usernames) {
      const user = await this.client.contacts.find(name.trim().replace(/^@/, ''));
      if (user.userId === this.#state.account.userId) continue;
      await this.#learn(user.userId, user.username);
      members.push(user.userId);
    }
    if (members.length === 0) throw new Error('Add at least one other person.');
    const chat = await this.client.chats.createGroup({ title: title.trim(), members });
    await this.refreshChats();
    await this.openChat(chat.chatId);
    return chat.chatId;
  }

  /** The group's members from its verified record (roles as signed), with the server's disagreements. */
  async members(chatId: string): Promise<{ members: { userId: string; role: string }[]; mismatch: Chat['memberListMismatch'] }> {
    const chat = await this.client.chats.get(chatId);
    const verified = chat.verifiedMembers?.map((m) => ({ userId: m.userId, role: chat.members.find((x) => x.userId === m.userId)?.role === 'owner' ? 'owner' : m.role }));
    return { members: verified ?? chat.members.map((m) => ({ userId: m.userId, role: m.role })), mismatch: chat.memberListMismatch ?? null };
  }

  /** The group's members (verified record), remembered for its presence line; presence is asked for those not answered yet. */
  async #loadGroupMembers(chatId: string): Promise<void> {
    const { members } = await this.members(chatId);
    this.#set({ groupMembers: { ...this.#state.groupMembers, [chatId]: members.map((m) => m.userId) } });
    this.#subscribePresence(false);
  }

  async addMember(chatId: string, username: string): Promise<void> {
    const user = await this.client.contacts.find(username.trim().replace(/^@/, ''));
    await this.#learn(user.userId, user.username);
    await this.client.chats.members.add(chatId, [user.userId]);
  }

  /** A new epoch whose encrypted metadata carries the new title (admins). */
  async rename(chatId: string, title: string): Promise<void> {
    await this.client.chats.rename(chatId, title.trim());
    await this.refreshChats();
  }

  /** The owner gives or takes admin rights (a new signed epoch). */
  async setRole(chatId: string, userId: string, role: 'admin' | 'member'): Promise<void> {
    await this.client.chats.members.changeRole(chatId, userId, role);
  }

  async removeMember(chatId: string, userId: string): Promise<void> {
    await this.client.chats.members.remove(chatId, userId);
  }

  async leave(chatId: string): Promise<void> {
    await this.client.chats.members.leave(chatId);
    this.#set({ openChatId: null });
    await this.refreshChats();
  }

  async openChat(chatId: string | null): Promise<void> {
    this.#set({ openChatId: chatId });
    if (!chatId) return;
    const unread = this.#state.chats.find((e) => e.chat.chatId === chatId)?.unread ?? 0;
    if (unread >= DEFAULT_MIN_UNREAD && !(chatId in this.#state.digestOffers)) this.#set({ digestOffers: { ...this.#state.digestOffers, [chatId]: unread } });
    if (!this.#state.history[chatId]) {
      this.#setHistory(chatId, { messages: [], hasMore: false, loading: true });
      const page = await this.client.messages.history(chatId, { limit: PAGE });
      this.#setHistory(chatId, { messages: mergeMessages(this.#historyOf(chatId)?.messages ?? [], page.messages), hasMore: page.hasMore, loading: false, from: page.span?.from ?? null });
    }
    if (this.#state.chats.find((e) => e.chat.chatId === chatId)?.chat.type === 'group') void this.#loadGroupMembers(chatId).catch(() => undefined);
    // Loading a group verifies its history against what this device verified before: a fork shows now, before any send.
    if (this.#state.chats.find((e) => e.chat.chatId === chatId)?.chat.type === 'group') await this.#checkFork(chatId).catch(() => undefined);
    await this.#markRead(chatId);
  }

  /** The page before the oldest message loaded. */
  async loadOlder(chatId: string): Promise<void> {
    const h = this.#state.history[chatId];
    const before = h?.from ?? h?.messages[0]?.seq;
    if (!h || h.loading || !h.hasMore || before === undefined) return;
    this.#setHistory(chatId, { ...h, loading: true });
    try {
      // Page on from the span the server covered: a page of only hidden messages (reactions, edits, deleted for me) shows nothing, so read on.
      let from = before;
      let page;
      let found: HistoryMessage[] = [];
      for (let i = 0; i < OLDER_PAGES_PER_LOAD; i++) {
        page = await this.client.messages.history(chatId, { before: from, limit: PAGE });
        found = [...page.messages, ...found];
        from = page.span?.from ?? page.messages[0]?.seq ?? from;
        if (found.length > 0 || !page.hasMore || !page.span) break;
      }
      const now = this.#state.history[chatId]!;
      this.#setHistory(chatId, { messages: mergeMessages(found, now.messages), hasMore: page!.hasMore, loading: false, from });
    } catch (err) {
      this.#setHistory(chatId, { ...this.#state.history[chatId]!, loading: false });
      throw err;
    }
  }

  /**
   * Sends at once; through an outage the message waits in the chat as "not sent yet" and is resent with the
   * same message id when the network is back (the server stores it once). Other errors are thrown.
   */
  async send(chatId: string, text: string, replyTo?: string): Promise<void> {
    this.#live?.typing(chatId, false);
    this.#lastTypingSent = 0;
    const p: PendingMessage = { messageId: uuidv7(), text, ...(replyTo ? { replyTo } : {}), status: 'sending' };
    this.#setPending(chatId, [...(this.#state.pending[chatId] ?? []), p]);
    try {
      await this.#deliver(chatId, p);
    } catch (err) {
      // Refused for the person's safety: the blocking alert says why and what they can do.
      if (err instanceof BilTrustError && err.code === 'group_forked') await this.#checkFork(chatId).catch(() => undefined);
      if (err instanceof BilTrustError && err.code === 'identity_changed') {
        const peer = this.#state.chats.find((e) => e.chat.chatId === chatId)?.chat;
        const userId = typeof err.details?.user_id === 'string' ? err.details.user_id : peer?.type === 'personal' ? peer.peerUserId : undefined;
        if (userId) this.#set({ keyChangesLater: this.#state.keyChangesLater.filter((u) => u !== userId) });
      }
      throw err;
    }
  }

  async #deliver(chatId: string, p: PendingMessage): Promise<void> {
    this.#updatePending(chatId, p.messageId, 'sending');
    let r;
    try {
      r = await this.client.messages.sendText(chatId, p.text, { messageId: p.messageId, ...(p.replyTo ? { replyTo: p.replyTo } : {}) });
    } catch (err) {
      if (transient(err)) {
        this.#updatePending(chatId, p.messageId, 'waiting');
        this.#scheduleFlush();
        return;
      }
      this.#setPending(chatId, (this.#state.pending[chatId] ?? []).filter((x) => x.messageId !== p.messageId));
      throw err;
    }
    this.#setPending(chatId, (this.#state.pending[chatId] ?? []).filter((x) => x.messageId !== p.messageId));
    const mine: DecryptedMessage = {
      ok: true,
      chatId,
      seq: r.seq,
      messageId: r.messageId,
      senderUserId: this.#state.account.userId,
      senderDeviceId: this.#state.account.deviceId,
      epoch: 0,
      createdAt: r.createdAt,
      timestamp: Date.now(),
      text: p.text,
      outgoing: true,
      content: { kind: 'text', text: p.text, ...(p.replyTo ? { reply_to: { message_id: p.replyTo, quote: quoteOf(this.#historyOf(chatId)?.messages, p.replyTo) } } : {}) },
      reactions: {},
      edited: [],
    };
    this.#append(mine, false);
  }

  /** Encrypts and uploads a file (progress 0..1), then sends it with an optional caption; not kept in the outbox (the file is not sealed here). */
  async sendFile(chatId: string, file: File, text: string, onProgress: (fraction: number) => void): Promise<void> {
    const ref = await uploadFile(this.client, chatId, file, onProgress);
    const r = await this.client.attachments.send(chatId, [ref], text);
    const content = { kind: 'text' as const, text, attachments: [ref] };
    const mine: DecryptedMessage = { ok: true, chatId, seq: r.seq, messageId: r.messageId, senderUserId: this.#state.account.userId, senderDeviceId: this.#state.account.deviceId, epoch: 0, createdAt: r.createdAt, timestamp: Date.now(), text, outgoing: true, content, reactions: {}, edited: [] };
    this.#append(mine, false);
  }

  /** Reacts with one emoji, or takes this user's reaction back; the change shows when the live connection brings it (`updated`). */
  async react(chatId: string, messageId: string, emoji: string, remove: boolean): Promise<void> {
    await this.client.messages.react(chatId, messageId, emoji, { remove });
  }

  /** Edits one of this user's text messages (the SDK refuses anyone else's). */
  async edit(chatId: string, messageId: string, text: string): Promise<void> {
    await this.client.messages.edit(chatId, messageId, text);
  }

  /** Hides the message on this device (kept in the sealed profile); nothing is sent. */
  async deleteForMe(chatId: string, messageId: string): Promise<void> {
    await this.client.messages.deleteForMe(chatId, messageId);
    const h = this.#historyOf(chatId);
    if (h) this.#setHistory(chatId, { ...h, messages: h.messages.filter((m) => m.messageId !== messageId) });
    this.#set({ chats: this.#state.chats.map((e) => (e.chat.chatId === chatId && e.last?.messageId === messageId ? { ...e, last: null } : e)) });
  }

  /** Deletes one of this user's messages for everyone (a signed tombstone); the row becomes "message deleted". */
  async deleteForEveryone(chatId: string, messageId: string): Promise<void> {
    await this.client.chats.deleteForEveryone(chatId, messageId);
    this.#deleted(chatId, messageId, 'deleted_by_sender');
  }

  /** Sets the chat's disappearing-message timer (ms, 0 = off); the server's word, as the SDK says. */
  async setTimer(chatId: string, ms: number): Promise<void> {
    const chat = await this.client.chats.setTimer(chatId, ms);
    this.#timerOf(chatId, chat.timer);
  }

  async #verifyTimer(chatId: string): Promise<void> {
    try {
      this.#timerOf(chatId, (await this.client.chats.get(chatId)).timer);
    } catch {
      // Shown again once the chat can be read.
    }
  }

  #timerOf(chatId: string, timer: ChatTimer | undefined): void {
    if (!timer) return;
    const { [chatId]: _gone, ...others } = this.#state.timerAlerts;
    this.#set({ timers: { ...this.#state.timers, [chatId]: timer.ms }, ...(timer.alert ? {} : { timerAlerts: others }) });
  }

  #deleted(chatId: string, messageId: string, reason: 'deleted_by_sender' | 'removed_by_server'): void {
    const gone = (m: HistoryMessage): HistoryMessage => {
      const { chatId: c, seq, messageId: id, senderUserId, senderDeviceId, epoch, createdAt } = m;
      return { ok: false, error: reason, chatId: c, seq, messageId: id, senderUserId, senderDeviceId, epoch, createdAt } as HistoryMessage;
    };
    const h = this.#historyOf(chatId);
    if (h) this.#setHistory(chatId, { ...h, messages: h.messages.map((m) => (m.messageId === messageId ? gone(m) : m)) });
    this.#set({ chats: this.#state.chats.map((e) => (e.chat.chatId === chatId && e.last?.messageId === messageId ? { ...e, last: gone(e.last) } : e)) });
  }

  /** Loads older pages until the message is loaded (a quote's target), at most a few pages; whether it is. */
  async loadUntil(chatId: string, messageId: string): Promise<boolean> {
    for (let i = 0; i < JUMP_PAGES; i++) {
      const h = this.#historyOf(chatId);
      if (!h || h.messages.some((m) => m.messageId === messageId)) return !!h;
      if (!h.hasMore) return false;
      await this.loadOlder(chatId);
    }
    return this.#historyOf(chatId)?.messages.some((m) => m.messageId === messageId) ?? false;
  }

  #updated(u: MessageUpdate): void {
    const h = this.#historyOf(u.chatId);
    if (h) this.#setHistory(u.chatId, { ...h, messages: applyUpdate(h.messages, u) });
    const chats = this.#state.chats.map((e) => (e.chat.chatId === u.chatId && e.last?.messageId === u.messageId ? { ...e, last: applyUpdate([e.last], u)[0]! } : e));
    this.#set({ chats });
  }

  #flushTimer: ReturnType<typeof setTimeout> | null = null;

  /** Resends what waits, oldest first per chat, every few seconds and whenever the connection is back. */
  #scheduleFlush(delayMs = 3000): void {
    if (this.#flushTimer) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = null;
      void this.flush();
    }, delayMs);
  }

  #flushing = false;

  async flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      for (const [chatId, list] of Object.entries(this.#state.pending)) {
        for (const p of list) {
          if (p.status !== 'waiting') continue;
          await this.#deliver(chatId, p).catch(() => undefined);
          if (this.#state.pending[chatId]?.some((x) => x.messageId === p.messageId)) break; // still offline: keep the order
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  #setPending(chatId: string, list: PendingMessage[]): void {
    const before = this.#state.pending[chatId]?.map((p) => p.messageId).join() ?? '';
    this.#set({ pending: { ...this.#state.pending, [chatId]: list } });
    if (list.map((p) => p.messageId).join() !== before) void this.#saveApp();
  }

  /** Seals the names and the outbox (messages not stored by the server yet) into IndexedDB. */
  async #saveApp(): Promise<void> {
    const outbox: Outbox = {};
    for (const [chatId, list] of Object.entries(this.#state.pending)) if (list.length > 0) outbox[chatId] = list.map(({ messageId, text, replyTo }) => ({ messageId, text, ...(replyTo ? { replyTo } : {}) }));
    await this.#appStore.save({ names: { ...this.#state.names }, outbox }).catch(() => undefined);
  }

  #updatePending(chatId: string, messageId: string, status: PendingMessage['status']): void {
    this.#setPending(chatId, (this.#state.pending[chatId] ?? []).map((x) => (x.messageId === messageId ? { ...x, status } : x)));
  }

  /** Tells the others this user is typing (at most every 3 s). */
  typing(chatId: string): void {
    const now = Date.now();
    if (now - this.#lastTypingSent < 3000) return;
    this.#lastTypingSent = now;
    this.#live?.typing(chatId, true);
  }

  /**
   * A digest of the chat's unread messages where `on` says (docs/digest.md): `device` sends nothing anywhere;
   * `server` seals the transcript to the digest service key the person gave (never one the server names).
   * The screen showed `digestDisclosure(on)` before the button, so the SDK's confirmation is that click.
   */
  /** A digest of one chat; the mode's disclosure was shown beside the button, so pressing it is the consent. */
  async digest(chatId: string, on: DigestMode, extra: { serviceIdentityKey?: string; model?: DigestModelSettings } = {}): Promise<DigestOutcome> {
    const names: Record<string, string> = { ...this.#state.names };
    const [outcome] = await this.client.digest([chatId], { on, names, confirm: () => true, ...extra });
    return outcome!;
  }

  digestDisclosure(on: DigestMode, modelBaseURL?: string): string {
    return this.client.digests.disclosure(on, modelBaseURL ? { baseURL: modelBaseURL } : undefined);
  }

  /** Ends the offer: the chat is read now. */
  async doneWithDigest(chatId: string): Promise<void> {
    const { [chatId]: _done, ...rest } = this.#state.digestOffers;
    this.#set({ digestOffers: rest });
    await this.#markRead(chatId);
  }

  async #markRead(chatId: string): Promise<void> {
    if (chatId in this.#state.digestOffers) return;
    const h = this.#state.history[chatId];
    const last = h?.messages.at(-1);
    this.#set({ chats: this.#state.chats.map((e) => (e.chat.chatId === chatId ? { ...e, unread: 0, countedTo: Math.max(e.countedTo, e.chat.lastSeq), countedAbove: new Set<number>() } : e)) });
    if (!last) return;
    const entry = this.#state.chats.find((e) => e.chat.chatId === chatId);
    if (entry && entry.chat.lastReadSeq >= last.seq) return;
    await this.client.messages.markRead(chatId, last.seq).catch(() => undefined);
  }

  #historyOf(chatId: string): ChatHistory | undefined {
    return this.#state.history[chatId];
  }

  #setHistory(chatId: string, h: ChatHistory): void {
    this.#set({ history: { ...this.#state.history, [chatId]: h } });
  }

  #received(m: HistoryMessage): void {
    const known = this.#state.chats.some((e) => e.chat.chatId === m.chatId);
    const own = m.senderUserId === this.#state.account.userId;
    this.#append(m, !own);
    if (!known) this.#refreshSoon();
    // Delivery accepts a presence subscription once the connection has seen the chat (sync or live traffic): ask again now.
    const entry = this.#state.chats.find((e) => e.chat.chatId === m.chatId);
    if (entry?.chat.type === 'personal' && !(entry.chat.peerUserId in this.#state.online)) this.#askPresence([entry.chat.peerUserId]);
    if (m.senderUserId !== this.#state.account.userId) this.#typing(m.chatId, m.senderUserId, false);
    if (this.#state.openChatId === m.chatId && document.visibilityState === 'visible') void this.#markRead(m.chatId);
  }

  #append(m: HistoryMessage, countUnread: boolean): void {
    const h = this.#state.history[m.chatId];
    if (h) this.#setHistory(m.chatId, { ...h, messages: mergeMessages(h.messages, [m]) });
    const isOpen = this.#state.openChatId === m.chatId;
    const chats = this.#state.chats.map((e) => {
      if (e.chat.chatId !== m.chatId) return e;
      const newer = !e.last || e.last.seq <= m.seq;
      // The server's count already includes everything up to the lastSeq it listed (a catch-up after the list
      // loaded); above it each seq counts once, whatever order live messages arrive in.
      const already = m.seq <= e.countedTo || e.countedAbove.has(m.seq) || (h?.messages.some((x) => x.seq === m.seq) ?? false);
      const count = countUnread && !isOpen && !already;
      return {
        ...e,
        chat: newer ? { ...e.chat, lastSeq: Math.max(e.chat.lastSeq, m.seq), lastActivityAt: m.createdAt } : e.chat,
        last: newer ? m : e.last,
        unread: count ? e.unread + 1 : e.unread,
        countedAbove: count ? new Set(e.countedAbove).add(m.seq) : e.countedAbove,
      };
    });
    this.#set({ chats: chats.sort(byActivity) });
  }

  #typing(chatId: string, userId: string, active: boolean): void {
    if (userId === this.#state.account.userId) return;
    const key = `${chatId}:${userId}`;
    const t = this.#typingTimers.get(key);
    if (t) clearTimeout(t);
    const now = new Set(this.#state.typing[chatId] ?? []);
    if (active) {
      now.add(userId);
      this.#typingTimers.set(key, setTimeout(() => this.#typing(chatId, userId, false), TYPING_MS));
    } else {
      now.delete(userId);
      this.#typingTimers.delete(key);
    }
    this.#set({ typing: { ...this.#state.typing, [chatId]: [...now] } });
  }
}

/**
 * Registering, resumably: the account is created first, then this browser's device. If the device step
 * fails, the SDK client (which holds the account's new identity key, client.pendingRegistration) is kept,
 * and trying again with the same username finishes the same account instead of finding the name taken.
 * The account ({username, userId}) is also sealed into the app record under the passphrase, so after a
 * reload the same username, password and passphrase finish it with a new identity key
 * (`devices.resetIdentity`, as `bil register` does).
 */
export class Registration {
  #attempt: { client: BilClient; stores: ReturnType<typeof keyStores>; passphrase: string } | null = null;

  /** The account created by an attempt whose device step failed, if any. */
  get pending(): { readonly username: string; readonly userId: string } | null {
    return this.#attempt?.client.pendingRegistration ?? null;
  }

  async register(o: { username: string; password: string; passphrase: string; deviceName: string }): Promise<Session> {
    const pending = this.pending;
    let attempt = this.#attempt;
    if (pending && pending.username.toLowerCase() === o.username.toLowerCase()) {
      if (attempt && attempt.passphrase !== o.passphrase) throw new Error('Use the passphrase you typed the first time: the keys made then are the ones being registered.');
    } else {
      const stores = keyStores(o.passphrase);
      attempt = { client: new BilClient({ baseUrl: location.origin, keyStore: stores.profile, outageRetryMs: OUTAGE_RETRY_MS }), stores, passphrase: o.passphrase };
    }
    this.#attempt = attempt!;
    const { client, stores } = attempt!;
    // After a reload the client is gone: the sealed app record (same passphrase) may name the account to finish.
    const earlier = !client.pendingRegistration && (await hasAppRecord()) ? ((await stores.app.load().catch(() => null))?.pendingRegistration ?? null) : null;
    let account: LocalAccount;
    try {
      account =
        earlier && earlier.username.toLowerCase() === o.username.toLowerCase()
          ? await client.devices.resetIdentity({ username: earlier.username, userId: earlier.userId, password: o.password, deviceName: o.deviceName })
          : await client.register({ username: o.username, password: o.password, deviceName: o.deviceName });
    } catch (err) {
      const left = client.pendingRegistration;
      if (left) await stores.app.save({ names: {}, outbox: {}, pendingRegistration: { ...left } }).catch(() => undefined);
      throw err;
    }
    this.#attempt = null;
    return Session.registered(attempt!.client, attempt!.stores, account);
  }
}
