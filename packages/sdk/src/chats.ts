// Messaging for one device: chats, membership with group epochs, sending and
// reading end-to-end encrypted messages (docs/protocol.md, docs/sdk.md
// "Chats and messages"). The server stores ciphertext and enforces who may
// do what; this module makes sure that what the device encrypts goes only to
// devices certified by pinned identity keys (personal chats) or listed in a
// verified epoch chain (groups), and that what it accepts was signed by such
// a device, is not a replay, and belongs to the chat it was fetched for.
import {
  createGroup,
  decryptDirectMessage,
  decryptGroupMessage,
  deviceRecordOf,
  encryptDirectMessage,
  encryptGroupMessage,
  extendGroupChain,
  fromUtf8,
  importDevicePrivateKeys,
  ReplayGuard,
  rotateEpoch,
  shareEpochKey,
  unwrapEpochKey,
  utf8,
  verifyGroupChain,
  type EpochKey,
  type GroupChain,
  type GroupMemberInput,
  type GroupRole,
  type LocalDevice,
  type SignedEpochRecord,
  type VerifiedDevice,
} from '@bil/crypto';
import { BilApiError, BilStateError } from './errors.js';
import type { StoredChatState, StoredProfile } from './key-store.js';
import {
  toChat,
  type Chat,
  type ChatJson,
  type ChatMember,
  type ChatRole,
  type ChatType,
  type EpochJson,
  type EpochsPageJson,
  type MemberJson,
  type MessageJson,
  type MessagesPageJson,
  type UnreadJson,
  type WrappedKeyJson,
} from './wire.js';

/** How many times a send is retried after the server names stale device lists or epochs. */
export const MAX_SEND_ATTEMPTS = 5;
/** Pause before retry n (ms × 2^(n-1)): the chat service learns of new devices from identity's events, a moment later. */
const RETRY_BASE_MS = 150;
/** How long this account's own device list is trusted before a group use looks for newly linked devices again (ms). */
const OWN_DEVICES_TTL_MS = 60_000;
/** Attempts at handing an epoch key to a new device while the chat service may not know the device yet. */
const SHARE_ATTEMPTS = 3;

/** A message from history, decrypted and verified. */
export interface DecryptedMessage {
  readonly ok: true;
  readonly chatId: string;
  readonly seq: number;
  readonly messageId: string;
  /** Signed by this user's device (verified). */
  readonly senderUserId: string;
  readonly senderDeviceId: string;
  /** Group epoch; 0 in personal chats. */
  readonly epoch: number;
  /** The sender's clock (signed, but not trusted for order), ms since the epoch. */
  readonly timestamp: number;
  /** When the server stored it, RFC 3339 (unsigned). */
  readonly createdAt: string;
  readonly text: string;
  /** Sent by this device. */
  readonly outgoing: boolean;
}

/**
 * A message that could not be decrypted or verified: tampered, replayed,
 * from an unverified device, at an epoch this device holds no key for, or
 * (personal chats) sent before this device was linked. One marker for every
 * cause (docs/protocol.md "Errors"); the server's unsigned claims are kept
 * for display.
 */
export interface UndecryptableMessage {
  readonly ok: false;
  readonly error: 'cannot_decrypt';
  readonly chatId: string;
  readonly seq: number;
  readonly messageId: string;
  readonly senderUserId: string;
  readonly senderDeviceId: string;
  readonly epoch: number;
  readonly createdAt: string;
}

export type HistoryMessage = DecryptedMessage | UndecryptableMessage;

/** One chat with unread messages (`unread()`). */
export interface UnreadChatOverview {
  readonly chatId: string;
  readonly type: ChatType;
  /** Empty for personal chats. */
  readonly title: string;
  readonly unreadCount: number;
  readonly firstUnreadSeq: number;
  readonly lastSeq: number;
  readonly lastActivityAt: string;
  /** The newest unread messages, ascending by seq, decrypted and verified (empty unless asked for). */
  readonly messages: HistoryMessage[];
}

/** The caller's unread messages on login (`unread()`). */
export interface UnreadOverview {
  readonly total: number;
  /** Chats with unread messages, over all pages. */
  readonly unreadChats: number;
  /** Pass as `pageToken` for more chats; empty on the last page. */
  readonly nextPageToken: string;
  readonly chats: UnreadChatOverview[];
}

export interface HistoryPage {
  /** Ascending by seq. */
  readonly messages: HistoryMessage[];
  /** More messages exist in the paging direction. */
  readonly hasMore: boolean;
  /** The chat's newest seq. */
  readonly lastSeq: number;
}

export interface SendResult {
  readonly chatId: string;
  readonly messageId: string;
  readonly seq: number;
  /** RFC 3339. */
  readonly createdAt: string;
  /** The server already had this message (a resend): nothing new was stored. */
  readonly duplicate: boolean;
}

export interface ChatsApi {
  /** Opens the personal chat with a user (the same chat every time, from either side). */
  createPersonal(userId: string): Promise<Chat>;
  /** Creates a group with its genesis epoch; members' devices are verified under their pinned identity keys. */
  createGroup(params: { title: string; members: readonly (string | { userId: string; role?: 'admin' | 'member' })[] }): Promise<Chat>;
  /** The caller's chats, newest activity first. */
  list(options?: { type?: ChatType; limit?: number; cursor?: string }): Promise<{ chats: Chat[]; nextCursor: string }>;
  /** One chat with its members. */
  get(chatId: string): Promise<Chat>;
  /** Deletes a group (owner). */
  delete(chatId: string): Promise<void>;
  /** Publishes a new epoch with the members' current verified devices (e.g. after a device was linked or revoked); admins. */
  rotate(chatId: string): Promise<{ epoch: number }>;
  readonly members: {
    /** Adds users to a group with the next epoch, which lists them (admins). */
    add(chatId: string, members: readonly (string | { userId: string; role?: 'admin' | 'member' })[]): Promise<Chat>;
    /** Removes a member and rotates the epoch in the same step (admins). */
    remove(chatId: string, userId: string): Promise<{ epoch: number; epochRotationRequired: boolean }>;
    /** Changes a member's role (owner); when admin rights change, publishes an epoch with the new roles. */
    changeRole(chatId: string, userId: string, role: ChatRole): Promise<ChatMember>;
    /** Leaves a group; an admin's client rotates the epoch on its next send. */
    leave(chatId: string): Promise<void>;
  };
}

export interface MessagesApi {
  /** Encrypts and sends text; pass `messageId` to resend (idempotent: the server keeps the first). */
  send(chatId: string, text: string, options?: { messageId?: string }): Promise<SendResult>;
  /** One page of history, decrypted and verified; failures are marked per message, never thrown. */
  history(chatId: string, options?: { after?: number; before?: number; limit?: number }): Promise<HistoryPage>;
  /** Decrypts one message as the API returns it (e.g. pushed by delivery). */
  decrypt(message: MessageJson): Promise<HistoryMessage>;
  /** Moves the read marker forward to `seq`. */
  markRead(chatId: string, seq: number): Promise<{ lastReadSeq: number; unreadCount: number }>;
  /** Counter gaps (per sender device) seen in a chat: messages the server did not deliver (yet). */
  gaps(chatId: string): Promise<{ senderDeviceId: string; from: number; to: number }[]>;
}

/** What the chat engine needs from the client. */
export interface ChatDeps {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  profile(): Promise<StoredProfile>;
  /** Verified devices of a user (own account: under this device's identity key), pinning on first use. */
  devices(userId: string): Promise<{ pin: string; devices: VerifiedDevice[] }>;
  /** Writes the messaging state into the profile. */
  save(state: StoredChatState): Promise<void>;
  now(): number;
}

interface ChatInfo {
  type: ChatType;
  peerUserId: string;
}

interface GroupState {
  chain: GroupChain;
  /** This device's wrapped key per epoch (from the server), unwrapped on demand. */
  wrapped: Map<number, string>;
  keys: Map<number, EpochKey>;
}

const enc = encodeURIComponent;

function emptyState(): StoredChatState {
  return { counters: {}, replay: { version: 1, chats: {} }, seen: {}, heads: {} };
}

/** Owner and admins are `admin` in epoch records. */
const recordRole = (role: ChatRole): GroupRole => (role === 'member' ? 'member' : 'admin');

/** A UUIDv7 (RFC 9562 §5.7): 48-bit ms timestamp, version, random bits. */
export function uuidv7(now = Date.now()): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(16));
  let t = now;
  for (let i = 5; i >= 0; i--) {
    b[i] = t % 256;
    t = Math.floor(t / 256);
  }
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function apiCode(err: unknown): string | undefined {
  return err instanceof BilApiError ? err.code : undefined;
}

function normaliseMembers(members: readonly (string | { userId: string; role?: 'admin' | 'member' })[]): { userId: string; role: 'admin' | 'member' }[] {
  return members.map((m) => (typeof m === 'string' ? { userId: m, role: 'member' as const } : { userId: m.userId, role: m.role ?? 'member' }));
}

/** The user ids a `mismatched_devices` answer names. */
function mismatchedUsers(err: BilApiError): string[] {
  const users = new Set<string>();
  for (const k of ['missing_devices', 'extra_devices']) {
    const list = err.details[k];
    if (Array.isArray(list)) for (const d of list) if (typeof (d as { user_id?: unknown })?.user_id === 'string') users.add((d as { user_id: string }).user_id);
  }
  return [...users];
}

export class ChatEngine {
  readonly chats: ChatsApi;
  readonly messages: MessagesApi;

  readonly #deps: ChatDeps;
  /** The profile (device) the state below belongs to. */
  #deviceId: string | null = null;
  #local: LocalDevice | null = null;
  #state: StoredChatState = emptyState();
  #replay = new ReplayGuard();
  readonly #info = new Map<string, ChatInfo>();
  readonly #devices = new Map<string, Promise<VerifiedDevice[]>>();
  readonly #groups = new Map<string, Promise<GroupState>>();
  /** message id → counter of messages this client sent, so a resend reuses its counter. */
  readonly #counterOf = new Map<string, number>();
  /** When this account's own device list was last fetched (0: fetch it on the next group use). */
  #ownDevicesAt = 0;
  /** `chat:epoch:device` of epoch keys this client handed to this account's new devices (or found there already). */
  readonly #shared = new Set<string>();
  /** `chat:epoch` heads this client already tried to replace to list new devices. */
  readonly #listing = new Set<string>();

  constructor(deps: ChatDeps) {
    this.#deps = deps;
    this.chats = {
      createPersonal: (userId) => this.#createPersonal(userId),
      createGroup: (p) => this.#createGroup(p.title, normaliseMembers(p.members)),
      list: (o) => this.#list(o ?? {}),
      get: (chatId) => this.#get(chatId),
      delete: async (chatId) => {
        await this.#deps.call('DELETE', `/v1/chats/${enc(chatId)}`);
        this.#groups.delete(chatId);
      },
      rotate: async (chatId) => ({ epoch: (await this.#publishNext(chatId, {}, 'publish')).epoch }),
      members: {
        add: (chatId, members) => this.#addMembers(chatId, normaliseMembers(members)),
        remove: (chatId, userId) => this.#removeMember(chatId, userId),
        changeRole: (chatId, userId, role) => this.#changeRole(chatId, userId, role),
        leave: (chatId) => this.#leave(chatId),
      },
    };
    this.messages = {
      send: (chatId, text, o) => this.#send(chatId, text, o?.messageId),
      history: (chatId, o) => this.#history(chatId, o ?? {}),
      decrypt: (m) => this.#decryptOne(m),
      markRead: async (chatId, seq) => {
        const res = await this.#deps.call<{ last_read_seq: number; unread_count: number }>('POST', `/v1/chats/${enc(chatId)}/read`, { seq });
        return { lastReadSeq: res.last_read_seq, unreadCount: res.unread_count };
      },
      gaps: async (chatId) => {
        await this.#me();
        return this.#replay.gaps(chatId).counters.map((g) => ({ senderDeviceId: g.sender_device_id, from: g.from, to: g.to }));
      },
    };
  }

  /**
   * This account's device list may have changed (a device was linked): the
   * next group use refetches it and hands new devices the current epoch key.
   */
  ownDevicesChanged(): void {
    this.#ownDevicesAt = 0;
  }

  /**
   * Unread messages over all chats (`GET /v1/unread`), one page of chats: the
   * total, and per chat the count and (with `messagesPerChat`, at most 50) its
   * newest unread messages, decrypted and verified like history.
   */
  async unread(options: { limit?: number; messagesPerChat?: number; pageToken?: string } = {}): Promise<UnreadOverview> {
    const q = new URLSearchParams();
    if (options.limit !== undefined) q.set('limit', String(options.limit));
    if (options.messagesPerChat) q.set('max_envelopes_per_chat', String(options.messagesPerChat));
    if (options.pageToken) q.set('page_token', options.pageToken);
    const qs = q.toString();
    const res = await this.#deps.call<UnreadJson>('GET', `/v1/unread${qs ? `?${qs}` : ''}`);
    const chats: UnreadChatOverview[] = [];
    for (const c of res.chats) {
      const messages: HistoryMessage[] = [];
      for (const m of c.newest_unread ?? []) messages.push(await this.#decryptOne(m));
      chats.push({
        chatId: c.chat_id,
        type: c.type,
        title: c.title ?? '',
        unreadCount: c.unread_count,
        firstUnreadSeq: c.first_unread_seq,
        lastSeq: c.last_seq,
        lastActivityAt: c.last_activity_at,
        messages,
      });
    }
    return { total: res.total_unread, unreadChats: res.unread_chats ?? chats.length, nextPageToken: res.next_page_token ?? '', chats };
  }

  // ---- this device ----------------------------------------------------------

  /** This device's keys and the messaging state of its profile (reloaded when the profile changes). */
  async #me(): Promise<LocalDevice> {
    const profile = await this.#deps.profile();
    if (this.#deviceId !== profile.deviceId || !this.#local) {
      const keys = await importDevicePrivateKeys(profile.deviceKeys);
      this.#deviceId = profile.deviceId;
      this.#local = { userId: profile.userId, deviceId: profile.deviceId, keys };
      this.#state = profile.chats ?? emptyState();
      this.#replay = new ReplayGuard(this.#state.replay);
      this.#info.clear();
      this.#devices.clear();
      this.#groups.clear();
      this.#counterOf.clear();
      this.#ownDevicesAt = 0;
      this.#shared.clear();
      this.#listing.clear();
    }
    return this.#local;
  }

  async #save(patch: Partial<StoredChatState>): Promise<void> {
    this.#state = { ...this.#state, ...patch, replay: this.#replay.snapshot() };
    await this.#deps.save(this.#state);
  }

  /** Reserves the next counter of this device in a chat and persists it before anything is sent with it. */
  async #nextCounter(chatId: string, messageId: string): Promise<number> {
    const known = this.#counterOf.get(messageId);
    if (known !== undefined) return known;
    const counter = (this.#state.counters[chatId] ?? 0) + 1;
    this.#counterOf.set(messageId, counter);
    await this.#save({ counters: { ...this.#state.counters, [chatId]: counter } });
    return counter;
  }

  // ---- directory --------------------------------------------------------------

  /** A user's devices verified under the pinned identity key (cached until a send says they changed). */
  #verifiedDevices(userId: string, refresh = false): Promise<VerifiedDevice[]> {
    let p = refresh ? undefined : this.#devices.get(userId);
    if (!p) {
      p = this.#deps.devices(userId).then((c) => {
        if (c.pin === 'changed') {
          throw new BilStateError('identity_changed', `${userId} has a new identity key: compare safety numbers and accept it (contacts.acceptIdentityChange) first`);
        }
        return c.devices;
      });
      p.catch(() => this.#devices.delete(userId));
      this.#devices.set(userId, p);
    }
    return p;
  }

  async #senderDevice(userId: string, deviceId: string): Promise<VerifiedDevice | undefined> {
    let found = (await this.#verifiedDevices(userId)).find((d) => d.deviceId === deviceId);
    if (!found) found = (await this.#verifiedDevices(userId, true)).find((d) => d.deviceId === deviceId);
    return found;
  }

  // ---- chats ------------------------------------------------------------------

  #remember(c: ChatJson): Chat {
    this.#info.set(c.chat_id, { type: c.type, peerUserId: c.peer_user_id });
    return toChat(c);
  }

  async #chatInfo(chatId: string): Promise<ChatInfo> {
    const known = this.#info.get(chatId);
    if (known) return known;
    await this.#get(chatId);
    return this.#info.get(chatId)!;
  }

  /** This device as its own account's directory lists it, verified under its own identity key. */
  async #ownDevice(): Promise<VerifiedDevice> {
    const me = await this.#me();
    let own = (await this.#verifiedDevices(me.userId)).find((d) => d.deviceId === me.deviceId);
    own ??= (await this.#verifiedDevices(me.userId, true)).find((d) => d.deviceId === me.deviceId);
    if (!own) throw new BilStateError('no_pinned_identity', 'this device is not among the devices its identity key certifies');
    return own;
  }

  /** This account's verified devices, refetched when older than OWN_DEVICES_TTL_MS or after ownDevicesChanged(). */
  async #ownDevices(): Promise<VerifiedDevice[]> {
    const me = await this.#me();
    const now = this.#deps.now();
    const stale = now - this.#ownDevicesAt > OWN_DEVICES_TTL_MS;
    const devices = await this.#verifiedDevices(me.userId, stale);
    if (stale) this.#ownDevicesAt = now;
    return devices;
  }

  async #createPersonal(userId: string): Promise<Chat> {
    const res = await this.#deps.call<{ chat: ChatJson }>('POST', '/v1/chats', { type: 'personal', peer_user_id: userId });
    return this.#remember(res.chat);
  }

  async #list(o: { type?: ChatType; limit?: number; cursor?: string }): Promise<{ chats: Chat[]; nextCursor: string }> {
    const q = new URLSearchParams();
    if (o.type) q.set('type', o.type);
    if (o.limit !== undefined) q.set('limit', String(o.limit));
    if (o.cursor) q.set('cursor', o.cursor);
    const qs = q.toString();
    const res = await this.#deps.call<{ chats: ChatJson[]; next_cursor: string }>('GET', `/v1/chats${qs ? `?${qs}` : ''}`);
    return { chats: res.chats.map((c) => this.#remember(c)), nextCursor: res.next_cursor };
  }

  async #get(chatId: string): Promise<Chat> {
    const res = await this.#deps.call<{ chat: ChatJson }>('GET', `/v1/chats/${enc(chatId)}`);
    return this.#remember(res.chat);
  }

  /** Members with their devices, each verified under the pinned identity key (this device's own account included). */
  async #memberInputs(members: readonly { userId: string; role: GroupRole }[]): Promise<GroupMemberInput[]> {
    const me = await this.#me();
    return Promise.all(
      members.map(async (m) => {
        let devices = await this.#verifiedDevices(m.userId);
        if (m.userId === me.userId && !devices.some((d) => d.deviceId === me.deviceId)) devices = await this.#verifiedDevices(m.userId, true);
        if (devices.length === 0) throw new BilStateError('no_pinned_identity', `${m.userId} has no device certified by the pinned identity key`);
        return { role: m.role, devices };
      }),
    );
  }

  async #createGroup(title: string, members: { userId: string; role: 'admin' | 'member' }[]): Promise<Chat> {
    const me = await this.#me();
    const others = members.filter((m) => m.userId !== me.userId);
    const chatId = globalThis.crypto.randomUUID();
    for (let attempt = 1; ; attempt++) {
      const inputs = await this.#memberInputs([{ userId: me.userId, role: 'admin' }, ...others]);
      const update = await createGroup({ chatId, admin: me, members: inputs, createdAt: this.#deps.now() });
      try {
        const res = await this.#deps.call<{ chat: ChatJson }>('POST', '/v1/chats', {
          type: 'group',
          chat_id: chatId,
          title,
          members: others.map((m) => ({ user_id: m.userId, role: m.role })),
          epoch_record: update.record,
          epoch_keys: update.wrappedKeys,
        });
        await this.#adoptEpoch(chatId, update.chain, update.epochKey);
        return this.#remember(res.chat);
      } catch (err) {
        if (!(await this.#refreshOnMismatch(err, attempt))) throw err;
      }
    }
  }

  /** On `mismatched_devices` refreshes the users it names and says whether to try again. */
  async #refreshOnMismatch(err: unknown, attempt: number): Promise<boolean> {
    if (!(err instanceof BilApiError) || err.code !== 'mismatched_devices' || attempt >= MAX_SEND_ATTEMPTS) return false;
    const users = mismatchedUsers(err);
    if (users.length === 0) this.#devices.clear();
    await Promise.all(users.map((u) => this.#verifiedDevices(u, true)));
    await sleep(RETRY_BASE_MS * 2 ** (attempt - 1));
    return true;
  }

  async #addMembers(chatId: string, members: { userId: string; role: 'admin' | 'member' }[]): Promise<Chat> {
    const res = await this.#publishNext(chatId, { add: members }, 'add');
    return res.chat!;
  }

  async #removeMember(chatId: string, userId: string): Promise<{ epoch: number; epochRotationRequired: boolean }> {
    const me = await this.#me();
    if (userId === me.userId) {
      await this.#leave(chatId);
      return { epoch: 0, epochRotationRequired: true };
    }
    const res = await this.#publishNext(chatId, { remove: userId }, 'remove');
    return { epoch: res.epoch, epochRotationRequired: false };
  }

  async #leave(chatId: string): Promise<void> {
    const me = await this.#me();
    // A leaving member can't sign the next epoch (it must not be in it, and the
    // signer must be); the server marks the group for rotation, which an
    // admin's client does before its next send.
    await this.#deps.call('DELETE', `/v1/chats/${enc(chatId)}/members/${enc(me.userId)}`);
    this.#groups.delete(chatId);
  }

  async #changeRole(chatId: string, userId: string, role: ChatRole): Promise<ChatMember> {
    const res = await this.#deps.call<{ member: MemberJson }>('PATCH', `/v1/chats/${enc(chatId)}/members/${enc(userId)}`, { role });
    // Epoch records carry admin rights (the chain only accepts epochs signed by
    // an admin of the previous record): publish one with the new roles.
    const group = await this.#group(chatId, true);
    const me = await this.#me();
    const changed = [...group.chain.head.members.values()].some((m) => {
      const now = m.userId === userId ? recordRole(role) : m.userId === me.userId && role === 'owner' ? 'admin' : m.role;
      return now !== m.role;
    });
    if (changed) await this.#publishNext(chatId, {}, 'publish');
    return { userId: res.member.user_id, role: res.member.role, joinedAt: res.member.joined_at, joinedSeq: res.member.joined_seq };
  }

  // ---- group epochs -------------------------------------------------------------

  /** The group's verified chain (synced from the server when `sync` or not loaded yet). */
  #group(chatId: string, sync = false): Promise<GroupState> {
    const current = this.#groups.get(chatId);
    if (current && !sync) return current;
    const next = (async () => {
      const prev = current ? await current.catch(() => undefined) : undefined;
      return this.#loadGroup(chatId, prev);
    })();
    next.catch(() => {
      if (this.#groups.get(chatId) === next) this.#groups.delete(chatId);
    });
    this.#groups.set(chatId, next);
    return next;
  }

  async #loadGroup(chatId: string, prev: GroupState | undefined): Promise<GroupState> {
    await this.#me();
    // Fetch the head again when this device has no key for it yet: a member
    // may have handed it one since (AddEpochKeys).
    const head = prev ? prev.chain.head.epoch : 0;
    const after = prev && !prev.wrapped.has(head) ? head - 1 : head;
    const epochs: EpochJson[] = [];
    for (;;) {
      const from = epochs.length ? epochs[epochs.length - 1]!.epoch : after;
      const page = await this.#deps.call<EpochsPageJson>('GET', `/v1/chats/${enc(chatId)}/keys?after_epoch=${from}&limit=100`);
      epochs.push(...page.epochs);
      if (!page.has_more || page.epochs.length === 0) break;
    }
    const records = epochs.filter((e) => e.epoch > head).map((e) => e.record as SignedEpochRecord);
    let chain: GroupChain;
    if (prev) {
      chain = records.length ? await extendGroupChain(prev.chain, records) : prev.chain;
    } else {
      const trustedHead = this.#state.heads[chatId];
      chain = await verifyGroupChain(records, { chatId, ...(trustedHead ? { trustedHead } : {}) });
    }
    const wrapped = new Map(prev?.wrapped ?? []);
    for (const e of epochs) if (e.wrapped_key) wrapped.set(e.epoch, e.wrapped_key);
    const state: GroupState = { chain, wrapped, keys: new Map(prev?.keys ?? []) };
    await this.#pinHead(chatId, chain);
    return state;
  }

  async #pinHead(chatId: string, chain: GroupChain): Promise<void> {
    const known = this.#state.heads[chatId];
    if (known && known.epoch >= chain.head.epoch) return;
    await this.#save({ heads: { ...this.#state.heads, [chatId]: { epoch: chain.head.epoch, hash: chain.head.hash } } });
  }

  /** Takes a chain this device extended itself (it signed the head) with the new epoch key. */
  async #adoptEpoch(chatId: string, chain: GroupChain, key: EpochKey): Promise<void> {
    const prev = await this.#groups.get(chatId)?.catch(() => undefined);
    const state: GroupState = { chain, wrapped: new Map(prev?.wrapped ?? []), keys: new Map(prev?.keys ?? []) };
    state.keys.set(key.epoch, key);
    this.#groups.set(chatId, Promise.resolve(state));
    await this.#pinHead(chatId, chain);
  }

  async #epochKey(chatId: string, state: GroupState, epoch: number): Promise<EpochKey | undefined> {
    const cached = state.keys.get(epoch);
    if (cached) return cached;
    const wrapped = state.wrapped.get(epoch);
    if (!wrapped) return undefined;
    try {
      const me = await this.#me();
      // A device the record doesn't list (linked since) proves it is a certified device of a listed member.
      const listed = state.chain.epochs[epoch - 1]?.members.get(me.userId)?.devices.has(me.deviceId);
      const deviceRecord = listed ? undefined : deviceRecordOf(await this.#ownDevice());
      const key = await unwrapEpochKey({ chain: state.chain, epoch, wrappedKey: wrapped, recipient: me, ...(deviceRecord ? { deviceRecord } : {}) });
      state.keys.set(epoch, key);
      return key;
    } catch {
      return undefined;
    }
  }

  /**
   * Looks for this account's devices that the group's current epoch doesn't
   * list (linked since) and hands each the current epoch key (AddEpochKeys,
   * `POST /v1/chats/{id}/keys/{epoch}/devices`), so it can read at once; if
   * this user is an admin, then publishes the next epoch listing them, so
   * they can send. Only a device listed in the head does this (it holds the
   * key and may sign). Best effort: failures are retried on a later use.
   * Returns true when it published a new epoch.
   */
  async #shareWithNewDevices(chatId: string, group: GroupState): Promise<boolean> {
    try {
      const me = await this.#me();
      const head = group.chain.head;
      const mine = head.members.get(me.userId);
      if (!mine?.devices.has(me.deviceId)) return false;
      const unlisted = (await this.#ownDevices()).filter((d) => !mine.devices.has(d.deviceId));
      if (unlisted.length === 0) return false;
      const key = await this.#epochKey(chatId, group, head.epoch);
      if (!key) return false;
      for (const device of unlisted) {
        const tag = `${chatId}:${head.epoch}:${device.deviceId}`;
        if (this.#shared.has(tag)) continue;
        const row = await shareEpochKey({ chain: group.chain, epochKey: key, device });
        for (let attempt = 1; attempt <= SHARE_ATTEMPTS; attempt++) {
          try {
            await this.#deps.call('POST', `/v1/chats/${enc(chatId)}/keys/${head.epoch}/devices`, { epoch_keys: [row] });
            this.#shared.add(tag);
            break;
          } catch (err) {
            const code = apiCode(err);
            if (code === 'epoch_key_exists') {
              this.#shared.add(tag);
              break;
            }
            // The chat service learns of a new device from identity's events, a moment later.
            if ((code !== 'mismatched_devices' && code !== 'unknown_device') || attempt === SHARE_ATTEMPTS) break;
            await sleep(RETRY_BASE_MS * 2 ** (attempt - 1));
          }
        }
      }
      const listing = `${chatId}:${head.epoch}`;
      if (mine.role !== 'admin' || this.#listing.has(listing)) return false;
      this.#listing.add(listing);
      try {
        await this.#publishNext(chatId, {}, 'publish');
      } catch {
        this.#listing.delete(listing); // e.g. another admin published first: the next use looks again
        return false;
      }
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Builds and publishes the next epoch of a group: the members of the
   * verified head record that the server still lists (removals are safe to
   * take from the server, additions never are), plus `add`, minus `remove`,
   * with roles from the server and each member's current verified devices.
   */
  async #publishNext(
    chatId: string,
    change: { add?: { userId: string; role: 'admin' | 'member' }[]; remove?: string },
    via: 'publish' | 'add' | 'remove',
  ): Promise<{ epoch: number; chat?: Chat }> {
    const me = await this.#me();
    for (let attempt = 1; ; attempt++) {
      const group = await this.#group(chatId, true);
      const chat = await this.#get(chatId);
      const serverRoles = new Map(chat.members.map((m) => [m.userId, m.role]));
      const members: { userId: string; role: GroupRole }[] = [];
      for (const m of group.chain.head.members.values()) {
        const role = serverRoles.get(m.userId);
        if (role === undefined || m.userId === change.remove) continue;
        members.push({ userId: m.userId, role: recordRole(role) });
      }
      for (const a of change.add ?? []) if (!members.some((m) => m.userId === a.userId)) members.push({ userId: a.userId, role: a.role });
      const update = await rotateEpoch({ chain: group.chain, signer: me, members: await this.#memberInputs(members), createdAt: this.#deps.now() });
      const keys = { epoch_record: update.record, epoch_keys: update.wrappedKeys };
      try {
        let chatJson: ChatJson | undefined;
        if (via === 'add') {
          const res = await this.#deps.call<{ chat: ChatJson }>('POST', `/v1/chats/${enc(chatId)}/members`, {
            members: (change.add ?? []).map((a) => ({ user_id: a.userId, role: a.role })),
            ...keys,
          });
          chatJson = res.chat;
        } else if (via === 'remove') {
          await this.#deps.call('DELETE', `/v1/chats/${enc(chatId)}/members/${enc(change.remove!)}`, keys);
        } else {
          await this.#deps.call('POST', `/v1/chats/${enc(chatId)}/keys`, keys);
        }
        await this.#adoptEpoch(chatId, update.chain, update.epochKey);
        return { epoch: update.chain.head.epoch, ...(chatJson ? { chat: this.#remember(chatJson) } : {}) };
      } catch (err) {
        const code = apiCode(err);
        if (await this.#refreshOnMismatch(err, attempt)) continue;
        // Someone else published an epoch meanwhile: sync and build on theirs.
        if ((code === 'unexpected_epoch' || code === 'epoch_prev_hash_mismatch') && attempt < MAX_SEND_ATTEMPTS) continue;
        throw err;
      }
    }
  }

  // ---- sending --------------------------------------------------------------------

  async #send(chatId: string, text: string, messageId = uuidv7(this.#deps.now())): Promise<SendResult> {
    if (typeof text !== 'string') throw new TypeError('text: expected a string');
    const me = await this.#me();
    const info = await this.#chatInfo(chatId);
    const counter = await this.#nextCounter(chatId, messageId);
    const plaintext = utf8(text);
    let synced = false;
    for (let attempt = 1; ; attempt++) {
      let body: { message_id: string; envelope: unknown; wrapped_keys?: WrappedKeyJson[] };
      if (info.type === 'personal') {
        // Every certified device of both users, this one included (it reads its own messages back).
        await this.#ownDevice();
        const [mine, theirs] = await Promise.all([this.#verifiedDevices(me.userId), this.#verifiedDevices(info.peerUserId)]);
        const recipients = [...mine, ...theirs];
        if (theirs.length === 0) throw new BilStateError('no_pinned_identity', `${info.peerUserId} has no device certified by the pinned identity key`);
        const msg = await encryptDirectMessage({ sender: me, chatId, messageId, counter, timestamp: this.#deps.now(), plaintext, recipients });
        body = { message_id: messageId, envelope: msg.envelope, wrapped_keys: [...msg.wrapped_keys] };
      } else {
        let group = await this.#group(chatId);
        if (attempt === 1 && (await this.#shareWithNewDevices(chatId, group))) group = await this.#group(chatId);
        const usable = (g: GroupState) => g.chain.head.members.get(me.userId)?.devices.has(me.deviceId) ?? false;
        if (!usable(group) && !synced) {
          // Maybe listed since this client loaded the chain (another device of an admin published an epoch).
          synced = true;
          group = await this.#group(chatId, true);
        }
        const key = await this.#epochKey(chatId, group, group.chain.head.epoch);
        if (!key || !usable(group)) {
          // This device is not in the current epoch (e.g. linked later): an admin rotates.
          await this.#rotateIfAdmin(chatId, attempt, new BilStateError('not_in_epoch', 'this device is not in the current epoch of the group; an admin must rotate it (chats.rotate)'));
          continue;
        }
        const envelope = await encryptGroupMessage({ sender: me, chain: group.chain, epochKey: key, messageId, counter, timestamp: this.#deps.now(), plaintext });
        body = { message_id: messageId, envelope };
      }
      try {
        const res = await this.#deps.call<{ seq: number; created_at: string; duplicate: boolean }>('POST', `/v1/chats/${enc(chatId)}/messages`, body);
        return { chatId, messageId, seq: res.seq, createdAt: res.created_at, duplicate: res.duplicate };
      } catch (err) {
        const code = apiCode(err);
        if (info.type === 'personal' && (await this.#refreshOnMismatch(err, attempt))) continue;
        if (info.type === 'group' && attempt < MAX_SEND_ATTEMPTS) {
          if (code === 'stale_epoch' || code === 'unknown_epoch') {
            await this.#group(chatId, true);
            continue;
          }
          if (code === 'epoch_rotation_required' || code === 'device_not_in_epoch') {
            await this.#rotateIfAdmin(chatId, attempt, err);
            continue;
          }
        }
        throw err;
      }
    }
  }

  /** Publishes the next epoch if this user may (owner or admin); otherwise rethrows `reason`. */
  async #rotateIfAdmin(chatId: string, attempt: number, reason: unknown): Promise<void> {
    if (attempt >= MAX_SEND_ATTEMPTS) throw reason;
    const chat = await this.#get(chatId);
    if (chat.myRole === 'member') throw reason;
    const group = await this.#group(chatId, true);
    const me = await this.#me();
    const listed = group.chain.head.members.get(me.userId)?.devices.has(me.deviceId) ?? false;
    if (chat.epoch === group.chain.head.epoch && !chat.epochRotationRequired) {
      if (listed && group.wrapped.has(chat.epoch)) return; // someone rotated already
    }
    // Only a device the head lists may sign the next record: a device linked
    // since waits for another device of an admin to list it.
    if (!listed) throw reason;
    try {
      await this.#publishNext(chatId, {}, 'publish');
    } catch (err) {
      // Another admin may have rotated at the same time: the caller's retry syncs.
      if (apiCode(err) !== 'unexpected_epoch' && apiCode(err) !== 'epoch_prev_hash_mismatch') throw err;
    }
  }

  // ---- reading ------------------------------------------------------------------------

  async #history(chatId: string, o: { after?: number; before?: number; limit?: number }): Promise<HistoryPage> {
    // Load this profile's state (seen message ids, replay guard) before copying from it.
    await this.#me();
    const q = new URLSearchParams();
    if (o.after !== undefined) q.set('after', String(o.after));
    if (o.before !== undefined) q.set('before', String(o.before));
    if (o.limit !== undefined) q.set('limit', String(o.limit));
    const qs = q.toString();
    const page = await this.#deps.call<MessagesPageJson>('GET', `/v1/chats/${enc(chatId)}/messages${qs ? `?${qs}` : ''}`);
    if ((await this.#chatInfo(chatId)).type === 'group') await this.#prepareGroupPage(chatId, page);
    const messages: HistoryMessage[] = [];
    const seen = { ...(this.#state.seen[chatId] ?? {}) };
    for (const m of page.messages) messages.push(await this.#open(chatId, m, seen));
    await this.#save({ seen: { ...this.#state.seen, [chatId]: { ...this.#state.seen[chatId], ...seen } } });
    return { messages, hasMore: page.has_more, lastSeq: page.last_seq };
  }

  /**
   * Before opening a page of a group: hands this account's new devices the
   * current key (see #shareWithNewDevices), and syncs the chain once when the
   * page has messages of the head epoch this device holds no key for yet.
   */
  async #prepareGroupPage(chatId: string, page: MessagesPageJson): Promise<void> {
    try {
      let group = await this.#group(chatId);
      if (await this.#shareWithNewDevices(chatId, group)) group = await this.#group(chatId);
      const head = group.chain.head.epoch;
      if (page.messages.some((m) => m.epoch >= head) && !group.wrapped.has(head) && !group.keys.has(head)) await this.#group(chatId, true);
    } catch {
      // Opening marks what it can't read.
    }
  }

  async #decryptOne(m: MessageJson): Promise<HistoryMessage> {
    await this.#me();
    const seen = { ...(this.#state.seen[m.chat_id] ?? {}) };
    const out = await this.#open(m.chat_id, m, seen);
    await this.#save({ seen: { ...this.#state.seen, [m.chat_id]: { ...this.#state.seen[m.chat_id], ...seen } } });
    return out;
  }

  /** Decrypts and verifies one message; `seen` (message id → seq) is updated for accepted ones. */
  async #open(chatId: string, m: MessageJson, seen: Record<string, number>): Promise<HistoryMessage> {
    const failed: UndecryptableMessage = {
      ok: false,
      error: 'cannot_decrypt',
      chatId,
      seq: m.seq,
      messageId: m.message_id,
      senderUserId: m.sender_user_id,
      senderDeviceId: m.sender_device_id,
      epoch: m.epoch,
      createdAt: m.created_at,
    };
    try {
      const me = await this.#me();
      if (m.chat_id !== chatId) return failed;
      // Reading a message again at the seq it was accepted at is not a replay;
      // the same message id at another seq is.
      const before = seen[m.message_id];
      if (before !== undefined && before !== m.seq) return failed;
      const replay = before === undefined ? this.#replay : undefined;
      const info = await this.#chatInfo(chatId);
      let opened: { header: { message_id: string; sender_user_id: string; sender_device_id: string; epoch: number; timestamp: number }; plaintext: Uint8Array };
      if (info.type === 'personal') {
        if (m.sender_user_id !== me.userId && m.sender_user_id !== info.peerUserId) return failed;
        // This device's own messages carry a key wrapped to it as well, and open the same way.
        const sender = await this.#senderDevice(m.sender_user_id, m.sender_device_id);
        if (!sender) return failed;
        opened = await decryptDirectMessage({ envelope: m.envelope, wrappedKey: m.wrapped_key, recipient: me, chatId, sender, ...(replay ? { replay } : {}) });
      } else {
        let group = await this.#group(chatId);
        if (m.epoch > group.chain.head.epoch) group = await this.#group(chatId, true);
        const key = await this.#epochKey(chatId, group, m.epoch);
        if (!key) return failed;
        opened = await decryptGroupMessage({ envelope: m.envelope, chain: group.chain, epochKeys: [key], ...(replay ? { replay } : {}) });
      }
      if (opened.header.message_id !== m.message_id) return failed;
      seen[m.message_id] = m.seq;
      this.#replay.noteSeq(chatId, m.seq);
      const outgoing = opened.header.sender_device_id === me.deviceId;
      return this.#decrypted(chatId, m, opened.header, fromUtf8(opened.plaintext), outgoing);
    } catch {
      return failed;
    }
  }

  #decrypted(
    chatId: string,
    m: MessageJson,
    h: { message_id: string; sender_user_id: string; sender_device_id: string; epoch: number; timestamp: number },
    text: string,
    outgoing: boolean,
  ): DecryptedMessage {
    return {
      ok: true,
      chatId,
      seq: m.seq,
      messageId: h.message_id,
      senderUserId: h.sender_user_id,
      senderDeviceId: h.sender_device_id,
      epoch: h.epoch,
      timestamp: h.timestamp,
      createdAt: m.created_at,
      text,
      outgoing,
    };
  }
}
