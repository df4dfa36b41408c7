// Message content use cases (docs/sdk.md "Replies, reactions, edits"):
// sending text, replies, reactions and edits in the content format of
// @bil/crypto (content.ts), and what history, unread and live show: reactions
// and edits applied to their targets (chat/content-state.ts), messages
// deleted on this device profile left out. Verified reactions and edits are
// kept in the profile (newest first, bounded), so a later run applies them
// to the older messages it reads.
import { encodeContent, isReactionEmoji, isUuid, MAX_QUOTE_LENGTH, type MessageContent } from '@bil/crypto';
import { BilStateError } from '../errors.js';
import type { StoredUpdate } from '../key-store.js';
import { applyContent, ContentState, isUpdate, type IgnoredContent, type NotedMessage } from './content-state.js';
import type { DeviceState } from './device-state.js';
import type { DecryptedMessage, HistoryMessage, HistoryOptions, HistoryPage, MessageUpdate, SendResult, SendTextOptions, UnreadOverview } from './types.js';

export interface ContentDeps {
  /** Encrypts and sends one plaintext (the engine's send, retried through outages). */
  /** Sends encoded content; `attachmentIds` are the blobs it references (the server lets the chat's members read them). */
  send(chatId: string, plaintext: Uint8Array, messageId?: string, attachmentIds?: readonly string[]): Promise<SendResult>;
  /** A page of history as the reader opened it (nothing hidden). */
  page(chatId: string, options: HistoryOptions): Promise<HistoryPage>;
}

/** How many history pages (of 100) a lookup of an unseen message reads, newest first. */
const LOOKUP_PAGES = 20;
/** Most message ids one chat keeps hidden ("delete for me"); the oldest are forgotten first. */
const MAX_HIDDEN_PER_CHAT = 10_000;
/** Most reactions and edits kept per chat, and most edit text (UTF-16 units) among them: any member can send many, so the oldest go first. */
const MAX_STORED_UPDATES = 2000;
const MAX_STORED_TEXT = 512 * 1024;

function stored(m: NotedMessage): StoredUpdate | undefined {
  const c = m.content;
  const base = { messageId: m.messageId, seq: m.seq, senderUserId: m.senderUserId, at: m.timestamp };
  if (c.kind === 'reaction') return { ...base, target: c.target, emoji: c.emoji, ...(c.remove ? { remove: true as const } : {}) };
  if (c.kind === 'edit') return { ...base, target: c.target, text: c.text };
  return undefined;
}

function noted(chatId: string, u: StoredUpdate): NotedMessage {
  const content = u.emoji !== undefined ? { kind: 'reaction' as const, target: u.target, emoji: u.emoji, ...(u.remove ? { remove: true as const } : {}) } : { kind: 'edit' as const, target: u.target, text: u.text ?? '' };
  return { chatId, messageId: u.messageId, seq: u.seq, senderUserId: u.senderUserId, timestamp: u.at, content };
}

/** The newest updates within the bounds, ascending by seq. */
function bounded(list: StoredUpdate[]): StoredUpdate[] {
  const out: StoredUpdate[] = [];
  let text = 0;
  for (const u of [...list].sort((a, b) => b.seq - a.seq)) {
    text += u.text?.length ?? 0;
    if (out.length >= MAX_STORED_UPDATES || text > MAX_STORED_TEXT) break;
    out.push(u);
  }
  return out.reverse();
}

function isNoted(m: HistoryMessage): m is DecryptedMessage & NotedMessage {
  return m.ok && m.content !== undefined;
}

export class MessageContents {
  readonly #states = new Map<string, ContentState>();

  constructor(
    private readonly deps: ContentDeps,
    private readonly device: DeviceState,
  ) {
    device.onReset(() => this.#states.clear());
  }

  /** The chat's state, starting from the updates kept in the profile (the profile is loaded: `device.me()` ran). */
  #state(chatId: string): ContentState {
    let s = this.#states.get(chatId);
    if (!s) {
      this.#states.set(chatId, (s = new ContentState()));
      for (const u of this.device.state.updates?.[chatId] ?? []) s.note(noted(chatId, u));
    }
    return s;
  }

  /** Keeps the verified reactions and edits among `messages` that the profile does not have yet. */
  async #keep(chatId: string, messages: readonly HistoryMessage[]): Promise<void> {
    const have = this.device.state.updates?.[chatId] ?? [];
    const known = new Set(have.map((u) => u.messageId));
    const fresh = messages.filter(isNoted).flatMap((m) => {
      const u = known.has(m.messageId) ? undefined : stored(m);
      return u ? [u] : [];
    });
    if (fresh.length === 0) return;
    await this.device.save({ updates: { ...this.device.state.updates, [chatId]: bounded([...have, ...fresh]) } });
  }

  #hidden(chatId: string): ReadonlySet<string> {
    return new Set(this.device.state.hidden?.[chatId] ?? []);
  }

  // ---- sending -----------------------------------------------------------------

  sendContent(chatId: string, content: MessageContent, o?: { messageId?: string }): Promise<SendResult> {
    const attachmentIds = content.kind === 'text' ? (content.attachments ?? []).map((a) => a.blob_id) : [];
    return this.deps.send(chatId, encodeContent(content), o?.messageId, attachmentIds);
  }

  async sendText(chatId: string, text: string, o?: SendTextOptions): Promise<SendResult> {
    if (typeof text !== 'string') throw new TypeError('text: expected a string');
    let replyTo: { message_id: string; quote?: string } | undefined;
    if (o?.replyTo !== undefined) {
      const target = await this.#find(chatId, o.replyTo);
      const quote = [...target.text].slice(0, MAX_QUOTE_LENGTH).join('');
      replyTo = { message_id: o.replyTo, ...(quote ? { quote } : {}) };
    }
    return this.sendContent(chatId, { kind: 'text', text, ...(replyTo ? { reply_to: replyTo } : {}) }, o);
  }

  async react(chatId: string, messageId: string, emoji: string, o?: { remove?: boolean; messageId?: string }): Promise<SendResult> {
    if (!isReactionEmoji(emoji)) throw new TypeError('emoji: expected one emoji (one grapheme cluster of at most 32 bytes)');
    await this.#find(chatId, messageId);
    return this.sendContent(chatId, { kind: 'reaction', target: messageId, emoji, ...(o?.remove ? { remove: true as const } : {}) }, o);
  }

  async edit(chatId: string, messageId: string, text: string, o?: { messageId?: string }): Promise<SendResult> {
    if (typeof text !== 'string' || text.length === 0) throw new TypeError('text: expected a non-empty string');
    const me = await this.device.me();
    const target = await this.#find(chatId, messageId);
    if (target.senderUserId !== me.userId) throw new BilStateError('not_own_message', 'only the sender of a message can edit it');
    if (target.kind !== 'text') throw new BilStateError('not_editable', 'only text messages can be edited');
    return this.sendContent(chatId, { kind: 'edit', target: messageId, text }, o);
  }

  async deleteForMe(chatId: string, messageId: string): Promise<void> {
    if (!isUuid(chatId)) throw new TypeError('chatId: expected a chat id');
    if (!isUuid(messageId)) throw new TypeError('messageId: expected a message id');
    await this.device.me();
    const hidden = this.device.state.hidden ?? {};
    const ids = hidden[chatId] ?? [];
    if (ids.includes(messageId)) return;
    await this.device.save({ hidden: { ...hidden, [chatId]: [...ids, messageId].slice(-MAX_HIDDEN_PER_CHAT) } });
  }

  /** A message of this chat this client has seen, else read from history (newest pages first); `unknown_message` if not found. */
  async #find(chatId: string, messageId: string): Promise<{ senderUserId: string; kind: string; text: string }> {
    if (!isUuid(messageId)) throw new TypeError('messageId: expected a message id');
    await this.device.me();
    const state = this.#state(chatId);
    const known = state.origin(messageId);
    let before: number | undefined;
    for (let i = 0; !known && i < LOOKUP_PAGES; i++) {
      const page = await this.deps.page(chatId, { limit: 100, ...(before !== undefined ? { before } : {}) });
      for (const m of page.messages) if (isNoted(m)) state.note(m);
      const found = state.origin(messageId);
      if (found) return this.#shown(found);
      if (!page.hasMore || page.messages.length === 0) break;
      before = page.messages[0]!.seq;
    }
    if (!known) throw new BilStateError('unknown_message', 'no such message in this chat (or not one this device could read)');
    return this.#shown(known);
  }

  #shown<T extends { kind: string }>(origin: T): T {
    // Reactions and edits are not messages anyone replies to, reacts to or edits.
    if (origin.kind === 'reaction' || origin.kind === 'edit') throw new BilStateError('unknown_message', 'that id is a reaction or an edit, not a message');
    return origin;
  }

  // ---- reading -----------------------------------------------------------------

  /** A history page as the app sees it: updates applied (and hidden unless asked for), hidden messages left out. */
  async history(chatId: string, page: HistoryPage, includeUpdates = false): Promise<HistoryPage> {
    const { messages, ignored } = this.#apply(chatId, page.messages, includeUpdates);
    await this.#keep(chatId, page.messages);
    return { ...page, messages, ignored };
  }

  #apply(chatId: string, list: readonly HistoryMessage[], includeUpdates: boolean): { messages: HistoryMessage[]; ignored: IgnoredContent[] } {
    const state = this.#state(chatId);
    const hidden = this.#hidden(chatId);
    const { messages: shown, ignored } = applyContent(state, list.filter(isNoted), hidden);
    const byId = new Map<string, HistoryMessage>(shown.map((m) => [m.messageId, m]));
    const messages: HistoryMessage[] = [];
    for (const m of list) {
      if (!m.ok) {
        if (!hidden.has(m.messageId)) messages.push(m);
        continue;
      }
      const out = byId.get(m.messageId);
      if (out) messages.push(out);
      else if (includeUpdates && m.content && isUpdate(m.content)) messages.push(m);
    }
    return { messages, ignored };
  }

  /** One decrypted message (decrypt, live): noted, with its current state. */
  async decrypted(h: HistoryMessage): Promise<HistoryMessage> {
    if (!isNoted(h)) return h;
    const state = this.#state(h.chatId);
    state.note(h);
    if (!isUpdate(h.content)) return { ...h, ...state.view(h.messageId) };
    await this.#keep(h.chatId, [h]);
    return h;
  }

  /** For a reaction or edit: the target's new state, or the refusal; undefined for other messages or a target not seen yet. */
  update(h: HistoryMessage): { update: MessageUpdate } | { ignored: IgnoredContent } | undefined {
    if (!isNoted(h) || !isUpdate(h.content)) return undefined;
    const state = this.#state(h.chatId);
    state.note(h);
    const target = h.content.target;
    const reason = state.refusal(h);
    if (reason) return { ignored: { chatId: h.chatId, messageId: h.messageId, seq: h.seq, senderUserId: h.senderUserId, target, reason } };
    const origin = state.origin(target);
    if (!origin || origin.kind === 'reaction' || origin.kind === 'edit') return undefined;
    return { update: { chatId: h.chatId, messageId: target, ...state.view(target), by: { messageId: h.messageId, senderUserId: h.senderUserId, kind: h.content.kind } } };
  }

  async unread(overview: UnreadOverview): Promise<UnreadOverview> {
    await this.device.me();
    const chats = [];
    for (const c of overview.chats) {
      chats.push({ ...c, messages: this.#apply(c.chatId, c.messages, false).messages });
      await this.#keep(c.chatId, c.messages);
    }
    return { ...overview, chats };
  }
}
