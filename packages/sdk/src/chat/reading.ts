// Reading: one message, a page of history with what is missing marked, and
// the unread overview. A message is shown only if it verified; everything
// else is a marker with its reason, never an exception.
import {
  decodeContent,
  decryptGroupMessage,
  envelopeDigest,
  GroupHistoryError,
  parseMessageDelete,
  verifyMessageDelete,
  type OpenedMessage,
  type Sighting,
  type VerifiedDevice,
} from '@bil/crypto';
import type { MessageJson } from '../wire.js';
import { messageJson, messagesPage, unreadJson } from './answers.js';
import type { DeviceState } from './device-state.js';
import type { DirectChats } from './direct.js';
import type { GroupEpochs } from './group-epochs.js';
import type { GroupStates } from './group-state.js';
import type { HistoryGap, HistoryMessage, HistoryPage, UndecryptableReason, UnreadChatOverview, UnreadOverview } from './types.js';

/** A chat's kind as this device verified it (personal chats with the checked peer). */
export type ChatKind = { readonly type: 'personal'; readonly peer: string } | { readonly type: 'group' };

export interface ReaderDeps {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  kind(chatId: string): Promise<ChatKind>;
  /** A sender's device as this client verified it (the directory), to check a tombstone's signature. */
  senderDevice(userId: string, deviceId: string): Promise<VerifiedDevice | undefined>;
}

const enc = encodeURIComponent;

export class Reader {
  constructor(
    private readonly deps: ReaderDeps,
    private readonly device: DeviceState,
    private readonly direct: DirectChats,
    private readonly groups: GroupStates,
    private readonly epochs: GroupEpochs,
  ) {}

  async history(chatId: string, o: { after?: number; before?: number; limit?: number }): Promise<HistoryPage> {
    // Load this profile's state (seen message ids, replay guard) before copying from it.
    const me = await this.device.me();
    const q = new URLSearchParams();
    if (o.after !== undefined) q.set('after', String(o.after));
    if (o.before !== undefined) q.set('before', String(o.before));
    if (o.limit !== undefined) q.set('limit', String(o.limit));
    const qs = q.toString();
    const page = messagesPage(await this.deps.call<unknown>('GET', `/v1/chats/${enc(chatId)}/messages${qs ? `?${qs}` : ''}`));
    if ((await this.deps.kind(chatId)).type === 'group') await this.#prepareGroupPage(chatId, page.messages);
    const messages: HistoryMessage[] = [];
    const seen = { ...(this.device.state.seen[chatId] ?? {}) };
    for (const m of page.messages) messages.push(await this.#open(chatId, m, seen));
    await this.device.save({ seen: { ...this.device.state.seen, [chatId]: { ...this.device.state.seen[chatId], ...seen } } });
    messages.sort((a, b) => a.seq - b.seq);
    const newest = o.before === undefined && !(o.after !== undefined && page.has_more);
    return { messages, hasMore: page.has_more, lastSeq: page.last_seq, gaps: this.#gaps(chatId, me.deviceId, messages, page.last_seq, o.after, newest), ignored: [], span: messages.length ? { from: messages[0]!.seq, to: messages.at(-1)!.seq } : null };
  }

  #gaps(chatId: string, myDeviceId: string, messages: HistoryMessage[], lastSeq: number, after: number | undefined, newest: boolean): HistoryGap[] {
    const gaps: HistoryGap[] = [];
    let prev = after;
    for (const m of messages) {
      if (prev !== undefined && m.seq > prev + 1) gaps.push({ kind: 'seq', from: prev + 1, to: m.seq - 1 });
      prev = m.seq;
    }
    if (newest && prev !== undefined && lastSeq > prev) gaps.push({ kind: 'seq', from: prev + 1, to: lastSeq });
    for (const g of this.device.replay.gaps(chatId).counters) gaps.push({ kind: 'counter', senderDeviceId: g.sender_device_id, from: g.from, to: g.to });
    // A truncated tail: the newest message the server acknowledged from this device is not in the newest page.
    const acked = this.device.state.acked?.[chatId];
    if (newest && acked) {
      const first = messages[0]?.seq ?? Number.POSITIVE_INFINITY;
      const shown = messages.some((m) => m.ok && m.seq === acked.seq && m.senderDeviceId === myDeviceId);
      const highest = this.device.replay.highestCounter(chatId, myDeviceId);
      if (highest < acked.counter && (lastSeq < acked.seq || (acked.seq >= first && !shown))) {
        gaps.push({ kind: 'own', senderDeviceId: myDeviceId, from: highest + 1, to: acked.counter });
      }
    }
    return gaps;
  }

  /** Before opening a page of a group: hands this account's new devices the current key, and syncs once when the page has messages of an epoch this device holds no key for yet. */
  async #prepareGroupPage(chatId: string, messages: MessageJson[]): Promise<void> {
    try {
      let group = await this.groups.get(chatId);
      if (await this.epochs.shareWithNewDevices(chatId, group)) group = await this.groups.get(chatId);
      const head = group.chain.head.epoch;
      if (messages.some((m) => m.epoch >= head) && !group.wrapped.has(head) && !group.keys.has(head)) await this.groups.get(chatId, true);
    } catch {
      // Opening marks what it can't read.
    }
  }

  async decryptOne(raw: MessageJson): Promise<HistoryMessage> {
    await this.device.me();
    const m = messageJson(raw);
    const seen = { ...(this.device.state.seen[m.chat_id] ?? {}) };
    const out = await this.#open(m.chat_id, m, seen);
    // In memory at once; on disk with the next coalesced write of the profile, not awaited per message (a live
    // burst would otherwise wait for one sealed write each). The same write carries the live cursor, so after a
    // crash what is on disk is consistent: messages past the stored cursor come again, at their seqs, and are
    // read as new. A failed write shows in the next awaited save.
    this.device.save({ seen: { ...this.device.state.seen, [m.chat_id]: { ...this.device.state.seen[m.chat_id], ...seen } } }).catch(() => undefined);
    return out;
  }

  /**
   * A removed message: `deleted_by_sender` only when its tombstone names this
   * chat, message and sender and verifies under one of the sender's verified
   * devices; anything else the server claims is `removed_by_server`.
   */
  async #removal(chatId: string, m: MessageJson): Promise<UndecryptableReason> {
    if (!m.tombstone || m.chat_id !== chatId) return 'removed_by_server';
    try {
      const p = parseMessageDelete(m.tombstone);
      const device = await this.deps.senderDevice(m.sender_user_id, p.sender_device_id);
      if (!device) return 'removed_by_server';
      await verifyMessageDelete({ tombstone: m.tombstone, chatId, messageId: m.message_id, senderUserId: m.sender_user_id, signingKey: device.signingKey });
      return 'deleted_by_sender';
    } catch {
      return 'removed_by_server';
    }
  }

  /**
   * Decrypts and verifies one message; `seen` (message id → seq) is updated
   * for accepted ones. The replay guard tells a re-read from a replay
   * (docs/protocol.md, "Replay and gaps"): the same chat, seq, message id and
   * envelope as when it was accepted is a re-read (opened and verified again,
   * nothing accepted); the same message id in another chat, at another seq or
   * with other envelope bytes is a replay.
   */
  async #open(chatId: string, m: MessageJson, seen: Record<string, number>): Promise<HistoryMessage> {
    const failed = (error: UndecryptableReason): HistoryMessage => ({
      ok: false,
      error,
      chatId,
      seq: m.seq,
      messageId: m.message_id,
      senderUserId: m.sender_user_id,
      senderDeviceId: m.sender_device_id,
      epoch: m.epoch ?? 0,
      createdAt: m.created_at,
    });
    if (m.removed) return failed(await this.#removal(chatId, m));
    try {
      const me = await this.device.me();
      if (m.chat_id !== chatId) return failed('cannot_decrypt');
      const sighting: Sighting = { chat_id: chatId, message_id: m.message_id, seq: m.seq, envelope_sha256: await envelopeDigest(m.envelope) };
      const verdict = this.device.replay.classify(sighting);
      if (verdict === 'replay') return failed('cannot_decrypt');
      const replay = verdict === 'new' ? this.device.replay : undefined;
      const kind = await this.deps.kind(chatId);
      let opened: OpenedMessage | undefined;
      if (kind.type === 'personal') {
        opened = await this.direct.open(chatId, kind.peer, m, replay);
      } else {
        let group = await this.groups.get(chatId);
        if ((m.epoch ?? 0) > group.chain.head.epoch) group = await this.groups.get(chatId, true);
        const key = await this.groups.epochKey(group, m.epoch ?? 0);
        if (!key) return failed('cannot_decrypt');
        try {
          opened = await decryptGroupMessage({ envelope: m.envelope, chain: group.chain, epochKeys: [key], ...(replay ? { replay } : {}) });
        } catch (err) {
          if (!(err instanceof GroupHistoryError)) throw err;
          if (err.code === 'group_forked') await this.groups.noteFork(chatId, { epoch: err.epoch, userId: err.senderUserId, source: 'message' });
          return failed(err.code);
        }
      }
      if (!opened || opened.header.message_id !== m.message_id) return failed('cannot_decrypt');
      this.device.replay.place(sighting); // where it was accepted (or the digest of one accepted before digests were kept)
      seen[m.message_id] = m.seq;
      this.device.replay.noteSeq(chatId, m.seq);
      const h = opened.header;
      const content = decodeContent(opened.plaintext);
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
        text: content.kind === 'text' ? content.text : '',
        ...(content.kind === 'text' && content.attachments ? { attachments: content.attachments } : {}),
        outgoing: h.sender_device_id === me.deviceId,
        content,
      };
    } catch {
      return failed('cannot_decrypt');
    }
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
    const res = unreadJson(await this.deps.call<unknown>('GET', `/v1/unread${qs ? `?${qs}` : ''}`));
    const chats: UnreadChatOverview[] = [];
    for (const c of res.chats) {
      const messages: HistoryMessage[] = [];
      for (const m of c.newest_unread) messages.push(await this.decryptOne(m));
      chats.push({
        chatId: c.chat_id,
        type: c.type,
        title: c.type === 'group' ? await this.#title(c.chat_id, c.title) : '',
        unreadCount: c.unread_count,
        firstUnreadSeq: c.first_unread_seq,
        lastSeq: c.last_seq,
        lastActivityAt: c.last_activity_at,
        messages,
      });
    }
    return { total: res.total_unread, unreadChats: res.unread_chats, nextPageToken: res.next_page_token, chats };
  }

  /** A group's title from its verified record (the server's legacy title for version 1 groups). */
  async #title(chatId: string, legacy: string): Promise<string> {
    try {
      return (await this.groups.title(await this.groups.get(chatId))) ?? legacy;
    } catch {
      return legacy;
    }
  }
}
