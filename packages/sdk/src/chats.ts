// Messaging for one device (docs/protocol.md, docs/sdk.md "Chats and
// messages"): the public chats/messages API, wired from the parts in chat/:
// device-state (counters, replay guard, verified heads), directory (devices
// this client may encrypt to), direct (personal chats bound to both people),
// group-state (the verified chain, forks, pins, epoch keys), group-epochs
// (the next epoch = verified head + this user's intent), reading (history
// with gaps marked), retry (the one retry policy), answers (shape checks),
// timer (disappearing-message timers from signed data only).
// Past 400 lines: it is the one place the parts are wired into the public API.
import { encryptGroupMessage, isDisappearingMs, signMessageDelete, type VerifiedDevice } from '@bil/crypto';
import { BilStateError, BilTrustError } from './errors.js';
import type { StoredChatState, StoredProfile } from './key-store.js';
import { toChat, type Chat, type ChatJson, type ChatRole, type ChatType } from './wire.js';
import { chatJson, chatsPage } from './chat/answers.js';
import { DeviceState } from './chat/device-state.js';
import { DirectChats } from './chat/direct.js';
import { Directory, type CheckedDevices } from './chat/directory.js';
import { GroupEpochs } from './chat/group-epochs.js';
import { GroupStates } from './chat/group-state.js';
import { Reader, type ChatKind } from './chat/reading.js';
import { MessageContents } from './chat/content.js';
import { ChatTimers, type TimerAlertEvent } from './chat/timer.js';
import { apiCode, mismatchedDevices, mismatchedUsers, retryTransient, withRetry } from './chat/retry.js';
import type { ChatsApi, HistoryMessage, MemberSpec, MessagesApi, SendResult, UnreadOverview } from './chat/types.js';

export { MAX_ATTEMPTS as MAX_SEND_ATTEMPTS } from './chat/retry.js';
export type {
  ChatsApi,
  DecryptedMessage,
  ForkAlert,
  HistoryGap,
  HistoryMessage,
  HistoryOptions,
  HistoryPage,
  MessagesApi,
  MessageUpdate,
  SendResult,
  SendTextOptions,
  UndecryptableMessage,
  UndecryptableReason,
  UnreadChatOverview,
  UnreadOverview,
} from './chat/types.js';

/** What the chat engine needs from the client. */
export interface ChatDeps {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  profile(): Promise<StoredProfile>;
  /** Verified devices of a user (own account: under this device's identity key), pinning on first use. */
  devices(userId: string): Promise<CheckedDevices>;
  /** Compares a group member's identity key with the pin (pinning it on first sight; a change raises "safety number changed"). */
  checkIdentity(userId: string, identityKey: string): Promise<'ok' | 'changed'>;
  /** Writes the messaging state into the profile. */
  save(state: StoredChatState): Promise<void>;
  now(): number;
  /** How long a send keeps retrying through an outage (default OUTAGE_RETRY_BUDGET_MS; 0: never). */
  outageRetryMs?: number;
  /** A chat's timer needs attention (the client's `timer-alert` event). */
  timerAlert?(event: TimerAlertEvent): void;
}

const enc = encodeURIComponent;

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

function normaliseMembers(members: readonly MemberSpec[]): { userId: string; role: 'admin' | 'member' }[] {
  return members.map((m) => (typeof m === 'string' ? { userId: m, role: 'member' as const } : { userId: m.userId, role: m.role ?? 'member' }));
}

/** Thrown inside a send attempt to try again after bringing the group up to date. */
class TryAgain extends Error {}

export class ChatEngine {
  readonly chats: ChatsApi;
  readonly messages: MessagesApi;

  readonly #deps: ChatDeps;
  readonly #device: DeviceState;
  readonly #directory: Directory;
  readonly #direct: DirectChats;
  readonly #groups: GroupStates;
  readonly #epochs: GroupEpochs;
  readonly #reader: Reader;
  readonly #contents: MessageContents;
  readonly #timers: ChatTimers;
  readonly #kinds = new Map<string, ChatKind>();
  /** Users whose device lists changed, with the groups already checked since: a group listing them may need a new epoch before anyone sends. */
  readonly #changedUsers = new Map<string, Set<string>>();

  constructor(deps: ChatDeps) {
    this.#deps = deps;
    this.#device = new DeviceState(deps);
    this.#device.onReset(() => {
      this.#kinds.clear();
      this.#changedUsers.clear();
    });
    this.#directory = new Directory(deps, this.#device);
    this.#direct = new DirectChats(this.#device, this.#directory);
    this.#groups = new GroupStates(deps, this.#device, this.#directory);
    this.#epochs = new GroupEpochs({ ...deps, remember: (c) => this.#remember(c) }, this.#device, this.#directory, this.#groups);
    this.#timers = new ChatTimers({ now: deps.now, alert: (e) => deps.timerAlert?.(e) }, this.#device, this.#directory, this.#groups);
    this.#reader = new Reader(
      { call: deps.call, kind: (chatId) => this.#kind(chatId), senderDevice: (userId, deviceId) => this.#directory.sender(userId, deviceId) },
      this.#device,
      this.#direct,
      this.#groups,
      this.#epochs,
    );
    const contents = (this.#contents = new MessageContents(
      { send: (chatId, plaintext, messageId, attachmentIds) => this.#sendPlaintext(chatId, plaintext, messageId, attachmentIds), page: (chatId, o) => this.#reader.history(chatId, o) },
      this.#device,
    ));
    this.chats = {
      createPersonal: (userId) => this.#createPersonal(userId),
      createGroup: (p) => this.#epochs.create(p.title, normaliseMembers(p.members)),
      list: (o) => this.#list(o ?? {}),
      get: (chatId) => this.#get(chatId),
      delete: async (chatId) => {
        await this.#deps.call('DELETE', `/v1/chats/${enc(chatId)}`);
        this.#groups.forget(chatId);
      },
      rotate: async (chatId) => ({ epoch: (await this.#epochs.publishNext(chatId, {}, 'publish')).epoch }),
      rename: async (chatId, title) => {
        if (typeof title !== 'string') throw new TypeError('title: expected a string');
        return { epoch: (await this.#epochs.publishNext(chatId, { title }, 'publish')).epoch };
      },
      setDigests: (chatId, allowed) => this.#setDigests(chatId, allowed),
      deleteForEveryone: (chatId, messageId) => this.#deleteForEveryone(chatId, messageId),
      setTimer: (chatId, ms) => this.#setTimer(chatId, ms),
      forkAlert: (chatId) => this.#groups.forkAlert(chatId),
      resolveFork: (chatId) => this.#groups.resolveFork(chatId),
      members: {
        add: async (chatId, members) => (await this.#epochs.publishNext(chatId, { add: normaliseMembers(members) }, 'add')).chat!,
        remove: (chatId, userId) => this.#removeMember(chatId, userId),
        changeRole: (chatId, userId, role) => this.#changeRole(chatId, userId, role),
        leave: (chatId) => this.#epochs.leave(chatId),
      },
    };
    this.messages = {
      send: (chatId, text, o) => contents.sendText(chatId, text, o),
      sendText: (chatId, text, o) => contents.sendText(chatId, text, o),
      sendContent: (chatId, content, o) => contents.sendContent(chatId, content, o),
      react: (chatId, messageId, emoji, o) => contents.react(chatId, messageId, emoji, o),
      edit: (chatId, messageId, text, o) => contents.edit(chatId, messageId, text, o),
      deleteForMe: (chatId, messageId) => contents.deleteForMe(chatId, messageId),
      history: async (chatId, o) => {
        const page = await contents.history(chatId, await this.#reader.history(chatId, o ?? {}), o?.includeUpdates);
        await this.#timerKnown(chatId);
        return { ...page, messages: page.messages.filter((m) => !this.expired(m)) };
      },
      decrypt: async (m) => contents.decrypted(await this.#reader.decryptOne(m)),
      markRead: async (chatId, seq) => {
        const res = await this.#deps.call<{ last_read_seq: number; unread_count: number }>('POST', `/v1/chats/${enc(chatId)}/read`, { seq });
        return { lastReadSeq: res.last_read_seq, unreadCount: res.unread_count };
      },
      gaps: async (chatId) => {
        await this.#device.me();
        return this.#device.replay.gaps(chatId).counters.map((g) => ({ senderDeviceId: g.sender_device_id, from: g.from, to: g.to }));
      },
    };
  }

  /** This account's device list may have changed (a device was linked): the next group use hands new devices the epoch key. */
  ownDevicesChanged(): void {
    this.#directory.ownDevicesChanged();
  }

  /** A contact's signed device list changed (a device revoked, an account closed): groups listing them rotate before the next send. */
  contactDevicesChanged(userId: string): void {
    this.#directory.forget(userId);
    this.#changedUsers.set(userId, new Set());
  }

  async unread(options?: { limit?: number; messagesPerChat?: number; pageToken?: string }): Promise<UnreadOverview> {
    const overview = await this.#contents.unread(await this.#reader.unread(options));
    for (const c of overview.chats) if (c.messages.length > 0) await this.#timerKnown(c.chatId);
    return { ...overview, chats: overview.chats.map((c) => ({ ...c, messages: c.messages.filter((m) => !this.expired(m)) })) };
  }

  /** A message older than its chat's verified timer (as last seen): hidden even if the server still returns it. */
  expired(m: HistoryMessage): boolean {
    return this.#timers.expired(m.chatId, m.ok ? m.timestamp : Date.parse(m.createdAt));
  }

  /** Verifies a chat's timer again (a live `disappearing_timer_set`): raises `timer-alert` if it needs attention. */
  async checkTimer(chatId: string): Promise<void> {
    await this.#get(chatId);
  }

  async #timerKnown(chatId: string): Promise<void> {
    if (this.#timers.known(chatId) !== undefined) return;
    try {
      await this.#get(chatId);
    } catch {
      // Not reachable now: the timer is applied once a chat answer was verified.
    }
  }

  /** Personal chats: this device signs a statement; groups: the next epoch record carries the timer (and the server is told). */
  async #setTimer(chatId: string, ms: number): Promise<Chat> {
    if (!isDisappearingMs(ms)) throw new TypeError('ms: expected 0 (off) or 30000 to 31536000000');
    await this.#device.me();
    const path = `/v1/chats/${enc(chatId)}/timer`;
    if ((await this.#kind(chatId)).type === 'group') {
      await this.#epochs.publishNext(chatId, { disappearingMs: ms }, 'publish');
      await this.#deps.call('PUT', path, { disappearing_ms: ms });
      return this.#get(chatId);
    }
    const current = chatJson((await this.#deps.call<{ chat: unknown }>('GET', `/v1/chats/${enc(chatId)}`)).chat);
    const statement = await this.#timers.sign(chatId, ms, (current as { timer_statement?: unknown }).timer_statement);
    const res = await this.#deps.call<{ chat: unknown }>('PUT', path, { disappearing_ms: ms, timer_statement: statement });
    const c = chatJson(res.chat);
    return this.#withTimer(c, await this.#remember(c));
  }

  /** The chat with its verified timer. */
  async #withTimer(c: ChatJson, chat: Chat): Promise<Chat> {
    const kind = await this.#kind(c.chat_id);
    const me = await this.#device.me();
    const timer = kind.type === 'personal' ? await this.#timers.personal(c, [me.userId, kind.peer]) : await this.#timers.group(c);
    return { ...chat, timer };
  }

  /** For a reaction or edit message (live): the message it changed, with its new state, or why the edit was refused. */
  contentUpdate(h: HistoryMessage): ReturnType<MessageContents['update']> {
    return this.#contents.update(h);
  }

  /** The group's signed digest setting at its verified head, synced first (personal chats: `allowed`; a head this device can't open: `unverified`). */
  async digestSetting(chatId: string): Promise<'allowed' | 'off' | 'unverified'> {
    await this.#device.me();
    if ((await this.#kind(chatId)).type === 'personal') return 'allowed';
    await this.#groups.requireNoFork(chatId);
    const metadata = await this.#groups.metadata(await this.#groups.get(chatId, true));
    if (metadata === undefined) return 'unverified';
    return metadata?.digests === 'off' ? 'off' : 'allowed';
  }

  async #setDigests(chatId: string, allowed: boolean): Promise<{ epoch: number }> {
    if (typeof allowed !== 'boolean') throw new TypeError('allowed: expected a boolean');
    await this.#device.me();
    if ((await this.#kind(chatId)).type !== 'group') throw new BilStateError('not_a_group', 'digests are a group setting; in a personal chat each person signs their own consent (digests.setConsent)');
    const { epoch } = await this.#epochs.publishNext(chatId, { digests: allowed ? 'allowed' : 'off' }, 'publish');
    // The service's switch (this user's): the second line, for clients that don't read the signed setting.
    await this.#deps.call('PUT', `/v1/chats/${enc(chatId)}/digest-policy`, { enabled: allowed });
    return { epoch };
  }

  /** Signs this device's tombstone for one of this user's messages; the server erases it for everyone. */
  async #deleteForEveryone(chatId: string, messageId: string): Promise<{ seq: number; deleted: boolean }> {
    const me = await this.#device.me();
    const tombstone = signMessageDelete({ chatId, messageId, device: me, deletedAt: this.#deps.now() });
    return this.#deps.call<{ seq: number; deleted: boolean }>('DELETE', `/v1/chats/${enc(chatId)}/messages/${enc(messageId)}`, { tombstone });
  }

  // ---- chats ------------------------------------------------------------------

  /** Checks and remembers a chat the server answered with: a personal chat must be the two people's. */
  async #remember(raw: ChatJson, checked?: [string, string][]): Promise<Chat> {
    const c = chatJson(raw);
    if (c.type === 'personal') {
      const peer = checked ? await this.#direct.check(c) : await this.#direct.verify(c);
      checked?.push([c.chat_id, peer]);
      this.#kinds.set(c.chat_id, { type: 'personal', peer });
    } else this.#kinds.set(c.chat_id, { type: 'group' });
    return toChat(c);
  }

  async #kind(chatId: string): Promise<ChatKind> {
    const known = this.#kinds.get(chatId);
    if (known) return known;
    const peer = await this.#direct.knownPeer(chatId);
    if (peer) {
      this.#kinds.set(chatId, { type: 'personal', peer });
      return { type: 'personal', peer };
    }
    await this.#get(chatId);
    return this.#kinds.get(chatId)!;
  }

  async #createPersonal(userId: string): Promise<Chat> {
    const res = await this.#deps.call<{ chat: unknown }>('POST', '/v1/chats', { type: 'personal', peer_user_id: userId });
    const c = chatJson(res.chat);
    if (c.type !== 'personal') throw new BilTrustError('chat_id_mismatch', 'the server answered with a group for a personal chat', { chat_id: c.chat_id, user_id: userId });
    await this.#direct.verify(c, userId);
    return this.#remember(c);
  }

  async #list(o: { type?: ChatType; limit?: number; cursor?: string }): Promise<{ chats: Chat[]; nextCursor: string }> {
    const q = new URLSearchParams();
    if (o.type) q.set('type', o.type);
    if (o.limit !== undefined) q.set('limit', String(o.limit));
    if (o.cursor) q.set('cursor', o.cursor);
    const qs = q.toString();
    const res = chatsPage(await this.#deps.call<unknown>('GET', `/v1/chats${qs ? `?${qs}` : ''}`));
    const chats: Chat[] = [];
    const checked: [string, string][] = [];
    for (const c of res.chats) {
      try {
        const chat = await this.#remember(c, checked);
        chats.push(chat.type === 'group' ? { ...chat, ...(await this.#groupTitle(chat)) } : chat);
      } catch (err) {
        // A personal chat that is not the two people's is left out of the list (it is refused where it is used).
        if (!(err instanceof BilTrustError)) throw err;
      }
    }
    await this.#direct.remember(checked);
    return { chats, nextCursor: res.next_cursor };
  }

  async #groupTitle(chat: Chat): Promise<{ title: string; titleVerified: boolean }> {
    try {
      let group = await this.#groups.get(chat.chatId);
      if (chat.epoch > group.chain.head.epoch) group = await this.#groups.get(chat.chatId, true);
      const title = await this.#groups.title(group);
      return title === null ? { title: chat.title, titleVerified: false } : { title, titleVerified: true };
    } catch {
      return { title: chat.title, titleVerified: false };
    }
  }

  async #get(chatId: string): Promise<Chat> {
    const res = await this.#deps.call<{ chat: unknown }>('GET', `/v1/chats/${enc(chatId)}`);
    const c = chatJson(res.chat);
    const chat = await this.#withTimer(c, await this.#remember(c));
    if (chat.type !== 'group') return chat;
    return { ...chat, ...(await this.#epochs.verifiedView(chatId, c)) };
  }

  async #removeMember(chatId: string, userId: string): Promise<{ epoch: number; epochRotationRequired: boolean }> {
    const me = await this.#device.me();
    if (userId === me.userId) {
      await this.#epochs.leave(chatId);
      return { epoch: 0, epochRotationRequired: true };
    }
    // Already gone from the server's list (e.g. a deleted account): the user's intent alone drops them from the next epoch.
    const server = await this.#epochs.serverChat(chatId);
    const via = server.members.some((m) => m.user_id === userId) ? 'remove' : 'publish';
    const res = await this.#epochs.publishNext(chatId, { remove: userId }, via);
    return { epoch: res.epoch, epochRotationRequired: false };
  }

  async #changeRole(chatId: string, userId: string, role: ChatRole): Promise<{ userId: string; role: ChatRole; joinedAt: string; joinedSeq: number }> {
    const res = await this.#deps.call<{ member: { user_id: string; role: ChatRole; joined_at: string; joined_seq: number } }>(
      'PATCH',
      `/v1/chats/${enc(chatId)}/members/${enc(userId)}`,
      { role },
    );
    // Epoch records carry admin rights: publish one with the role this user asked for.
    const group = await this.#groups.get(chatId, true);
    const me = await this.#device.me();
    const current = group.chain.head.members.get(userId)?.role;
    const wanted = role === 'member' ? 'member' : 'admin';
    const ownerMoved = role === 'owner' && group.chain.head.members.get(me.userId)?.role !== 'admin';
    if (current !== wanted || ownerMoved) await this.#epochs.publishNext(chatId, { role: { userId, role } }, 'publish');
    return { userId: res.member.user_id, role: res.member.role, joinedAt: res.member.joined_at, joinedSeq: res.member.joined_seq };
  }

  // ---- sending --------------------------------------------------------------------

  // Through an outage (no answer, 502/503/504) the whole send is retried with the same message id and
  // counter: the server stores it once, and a resend of a stored one returns the first result.
  // `attachmentIds`: the uploaded blobs the content references (their readers become the chat's members).
  #sendPlaintext(chatId: string, plaintext: Uint8Array, messageId = uuidv7(this.#deps.now()), attachmentIds: readonly string[] = []): Promise<SendResult> {
    return retryTransient(
      () => this.#send(chatId, plaintext, messageId, attachmentIds),
      this.#deps.outageRetryMs !== undefined ? { budgetMs: this.#deps.outageRetryMs } : {},
    );
  }

  async #send(chatId: string, plaintext: Uint8Array, messageId: string, attachmentIds: readonly string[]): Promise<SendResult> {
    await this.#device.me();
    const kind = await this.#kind(chatId);
    const counter = await this.#device.nextCounter(chatId, messageId);
    const attachments = attachmentIds.length === 0 ? {} : { attachment_ids: [...attachmentIds] };
    const post = async (body: object): Promise<SendResult> => {
      const res = await this.#deps.call<{ seq: number; created_at: string; duplicate: boolean }>('POST', `/v1/chats/${enc(chatId)}/messages`, { ...body, ...attachments });
      await this.#device.acknowledged(chatId, messageId, res.seq);
      return { chatId, messageId, seq: res.seq, createdAt: res.created_at, duplicate: res.duplicate };
    };
    if (kind.type === 'personal') {
      return withRetry(
        async () => post(await this.#direct.encrypt(chatId, kind.peer, messageId, counter, plaintext, this.#deps.now())),
        async (err) => {
          const m = mismatchedDevices(err);
          if (!m) return 'fail';
          await Promise.all(mismatchedUsers(m).map((u) => this.#directory.checked(u, true)));
          return 'retry';
        },
      );
    }
    let synced = false;
    return withRetry(
      async (n) => {
        // Checked on every attempt: a sync after `stale_epoch` may be what reveals the fork.
        await this.#groups.requireNoFork(chatId);
        let group = await this.#groups.get(chatId);
        if (n === 1 && (await this.#epochs.shareWithNewDevices(chatId, group))) group = await this.#groups.get(chatId);
        if (group.blockedBy) {
          throw new BilTrustError('identity_changed', `${group.blockedBy} has a new identity key: compare safety numbers and accept it first`, { chat_id: chatId, user_id: group.blockedBy });
        }
        await this.#rotateForDepartures(chatId, group.chain.head.members);
        const me = await this.#device.me();
        const listed = (g: typeof group) => g.chain.head.members.get(me.userId)?.devices.has(me.deviceId) ?? false;
        if (!listed(group) && !synced) {
          // Maybe listed since this client loaded the chain (another device of an admin published an epoch).
          synced = true;
          group = await this.#groups.get(chatId, true);
        }
        const key = await this.#groups.epochKey(group, group.chain.head.epoch);
        if (!key || !listed(group)) {
          // This device is not in the current epoch (e.g. linked later): an admin rotates.
          await this.#epochs.rotateIfAdmin(chatId, new BilStateError('not_in_epoch', 'this device is not in the current epoch of the group; an admin must rotate it (chats.rotate)'));
          throw new TryAgain();
        }
        const envelope = await encryptGroupMessage({ sender: me, chain: group.chain, epochKey: key, messageId, counter, timestamp: this.#deps.now(), plaintext });
        return post({ message_id: messageId, envelope });
      },
      async (err) => {
        if (err instanceof TryAgain) return 'retry';
        const code = apiCode(err);
        if (code === 'stale_epoch' || code === 'unknown_epoch' || code === 'envelope_epoch_hash_mismatch') {
          await this.#groups.get(chatId, true);
          await this.#groups.requireNoFork(chatId); // the sync found a fork: that, not the server's code, is the answer
          return 'retry';
        }
        if (code === 'epoch_rotation_required' || code === 'device_not_in_epoch') {
          await this.#epochs.rotateIfAdmin(chatId, err);
          return 'retry';
        }
        return 'fail';
      },
    );
  }

  /**
   * Before sending in a group: a member whose signed device list changed
   * (a device revoked, the account closed) and whose devices the head still
   * lists means the group needs a new epoch first. An admin's device makes it;
   * anyone else is refused (`rotation_pending`) rather than encrypting to a
   * revoked device.
   */
  async #rotateForDepartures(chatId: string, members: ReadonlyMap<string, { readonly devices: ReadonlyMap<string, VerifiedDevice> }>): Promise<void> {
    const changed = [...members.keys()].filter((u) => this.#changedUsers.get(u)?.has(chatId) === false);
    if (changed.length === 0) return;
    let gone = false;
    for (const userId of changed) {
      const current = new Set((await this.#directory.checked(userId, true)).devices.map((d) => d.deviceId));
      if ([...members.get(userId)!.devices.keys()].some((d) => !current.has(d))) gone = true;
    }
    if (gone) {
      const me = await this.#device.me();
      const group = await this.#groups.get(chatId, true);
      if (group.chain.head.members.get(me.userId)?.role !== 'admin') {
        throw new BilTrustError('rotation_pending', 'a member of this group revoked a device or closed their account: an admin must start a new epoch before anyone sends', { chat_id: chatId, what: changed });
      }
      await this.#epochs.publishNext(chatId, {}, 'publish');
    }
    for (const u of changed) this.#changedUsers.get(u)?.add(chatId);
  }
}
