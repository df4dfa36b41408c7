// The messaging API's public shapes (docs/sdk.md "Chats and messages").
import type { AttachmentRef, DecodedContent, MessageContent } from '@bil/crypto';
import type { Chat, ChatRole, ChatType, MessageJson } from '../wire.js';
import type { EditRecord, IgnoredContent, Reactions } from './content-state.js';

/**
 * Where a message stands and who sent it: signed and verified in a
 * DecryptedMessage (the sender's device signed it), the server's unsigned
 * claims in an UndecryptableMessage (kept for display only).
 */
export interface MessageHead {
  readonly chatId: string;
  readonly seq: number;
  readonly messageId: string;
  readonly senderUserId: string;
  readonly senderDeviceId: string;
  /** Group epoch; 0 in personal chats. */
  readonly epoch: number;
  /** When the server stored it, RFC 3339 (unsigned). */
  readonly createdAt: string;
}

/** A message from history, decrypted and verified. */
export interface DecryptedMessage extends MessageHead {
  readonly ok: true;
  /** The sender's clock (signed, but not trusted for order), ms since the epoch. */
  readonly timestamp: number;
  /** The text to show: the message's own, or its latest applied edit (empty for a message with no text). */
  readonly text: string;
  /** Attachments the message carries (client.attachments.download fetches and decrypts each). */
  readonly attachments?: readonly AttachmentRef[];
  /** Sent by this device. */
  readonly outgoing: boolean;
  /**
   * The decoded content as sent (docs/protocol.md "Message content"): `text`
   * (with `reply_to`, `attachments`), `reaction`, `edit`, or `unsupported` /
   * `invalid`. The SDK always sets `content`, `reactions` and `edited`; they
   * are optional so that apps can build their own message objects (e.g. an
   * optimistic one while sending).
   */
  readonly content?: DecodedContent;
  /** Reactions, emoji → user ids. */
  readonly reactions?: Reactions;
  /** Applied edits, oldest first (empty: never edited). */
  readonly edited?: readonly EditRecord[];
}

/**
 * Why a message is not shown as a normal message:
 * - `cannot_decrypt`: tampered, replayed, from an unverified device, at an
 *   epoch this device holds no key for, or (personal chats) sent before this
 *   device was linked. One marker for all of these (docs/protocol.md "Errors").
 * - `out_of_date_epoch`: signed by a member, but sent in a group epoch that a
 *   later record had replaced more than the grace period before: the sender's
 *   client was out of date (maybe a server kept a removal from it), and
 *   members removed since may have read it. Not shown as a normal message.
 * - `group_forked`: signed by a member who was shown another history of the
 *   group than this device (a fork); see `chats.forkAlert`.
 * - `deleted_by_sender`: deleted for everyone; the sender's signed tombstone
 *   (bil.message-delete.v1) verified under one of the sender's verified devices.
 * - `removed_by_server`: the server shows it removed (no ciphertext) without
 *   a tombstone that verifies: erased on expiry (disappearing messages) or by
 *   the server on its own. Not attributed to the sender.
 */
export type UndecryptableReason = 'cannot_decrypt' | 'out_of_date_epoch' | 'group_forked' | 'deleted_by_sender' | 'removed_by_server';

/** A message that could not be decrypted or verified; the server's unsigned claims are kept for display. */
export interface UndecryptableMessage extends MessageHead {
  readonly ok: false;
  readonly error: UndecryptableReason;
}

export type HistoryMessage = DecryptedMessage | UndecryptableMessage;

/**
 * Something missing from what the server showed:
 * - `seq`: server sequence numbers skipped inside the page, or between the
 *   page and the chat's last seq (unsigned: a hint);
 * - `counter`: a sender device's signed counters skipped (a message the
 *   server did not deliver, at least not yet);
 * - `own`: messages this device sent and the server acknowledged that history
 *   no longer contains (a truncated tail).
 */
export type HistoryGap =
  | { readonly kind: 'seq'; readonly from: number; readonly to: number }
  | { readonly kind: 'counter'; readonly senderDeviceId: string; readonly from: number; readonly to: number }
  | { readonly kind: 'own'; readonly senderDeviceId: string; readonly from: number; readonly to: number };

export interface HistoryPage {
  /** Ascending by seq. */
  readonly messages: HistoryMessage[];
  /** More messages exist in the paging direction. */
  readonly hasMore: boolean;
  /** The chat's newest seq. */
  readonly lastSeq: number;
  /** What is missing (empty when nothing is): show it where the messages are. */
  readonly gaps: HistoryGap[];
  /** Edits on this page this client refused (not the target's sender, or not a text message). */
  readonly ignored: IgnoredContent[];
  /**
   * The seqs of the page the server returned, hidden messages (reactions,
   * edits, deleted for me) included; null for an empty page. Page on with
   * `before: span.from` / `after: span.to`: `messages` may be empty while
   * `hasMore` is true.
   */
  readonly span: { readonly from: number; readonly to: number } | null;
}

/** A message changed by a reaction or an edit (the live `updated` event). */
export interface MessageUpdate {
  readonly chatId: string;
  /** The message changed. */
  readonly messageId: string;
  /** Its current text, edit history and reactions. */
  readonly text: string;
  readonly edited: readonly EditRecord[];
  readonly reactions: Reactions;
  /** The reaction or edit message that changed it, and its sender. */
  readonly by: { readonly messageId: string; readonly senderUserId: string; readonly kind: 'reaction' | 'edit' };
}

/** Options of `history`. */
export interface HistoryOptions {
  after?: number;
  before?: number;
  limit?: number;
  /** Return reaction and edit messages too (hidden by default; they are applied to their targets either way). */
  includeUpdates?: boolean;
}

/** One chat with unread messages (`unread()`). */
export interface UnreadChatOverview {
  readonly chatId: string;
  readonly type: ChatType;
  /** Empty for personal chats; for groups, the title from the verified record when this device has loaded it. */
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

export interface SendResult {
  readonly chatId: string;
  readonly messageId: string;
  readonly seq: number;
  /** RFC 3339. */
  readonly createdAt: string;
  /** The server already had this message (a resend): nothing new was stored. */
  readonly duplicate: boolean;
}

/** A fork of a group's history this device saw (persisted until resolved). */
export interface ForkAlert {
  readonly chatId: string;
  /** The first epoch where the histories differ. */
  readonly epoch: number;
  /** The member whose message showed the other history, if it came from a message. */
  readonly userId: string;
  /** `chain`: the server's chain does not extend the verified one; `message`: a member sent under another record. */
  readonly source: 'chain' | 'message';
  /** ms since the epoch. */
  readonly seenAt: number;
}

export type MemberSpec = string | { userId: string; role?: 'admin' | 'member' };

export interface ChatsApi {
  /** Opens the personal chat with a user (the same chat every time, from either side); its id is checked against the two user ids. */
  createPersonal(userId: string): Promise<Chat>;
  /** Creates a group with its genesis epoch; the title travels encrypted in the signed record; members' devices are verified under their pinned identity keys. */
  createGroup(params: { title: string; members: readonly MemberSpec[] }): Promise<Chat>;
  /** The caller's chats, newest activity first (group titles from the verified records). */
  list(options?: { type?: ChatType; limit?: number; cursor?: string }): Promise<{ chats: Chat[]; nextCursor: string }>;
  /** One chat: members and roles from the verified record, flagged where the server's list differs. */
  get(chatId: string): Promise<Chat>;
  /** Deletes a group (owner). */
  delete(chatId: string): Promise<void>;
  /** Publishes a new epoch (admins): the verified head's members with their current verified devices, minus departures this client verified. */
  rotate(chatId: string): Promise<{ epoch: number }>;
  /** Renames a group (admins): the next epoch carries the new title, encrypted. */
  rename(chatId: string, title: string): Promise<{ epoch: number }>;
  /**
   * Allows or switches off digests that leave members' devices (server and
   * own-model digests) for a group (admins): the next epoch carries the
   * setting in its signed metadata, which every member's client obeys; the
   * digest service's switch is set too (its second line).
   */
  setDigests(chatId: string, allowed: boolean): Promise<{ epoch: number }>;
  /**
   * Deletes one of this user's messages for everyone: this device signs a
   * tombstone (bil.message-delete.v1); the server erases the ciphertext and
   * keys, and members' clients show it as `deleted_by_sender` once the
   * tombstone verifies. Only the sender may (`not_the_sender` otherwise).
   */
  deleteForEveryone(chatId: string, messageId: string): Promise<{ seq: number; deleted: boolean }>;
  /**
   * Sets the chat's disappearing-message timer in ms (0 = off; 30 s to 365
   * days). Personal chats: either person; this device signs a timer
   * statement (bil.chat-timer.v1). Groups: admins and the owner; the next
   * epoch record carries the timer in its signed metadata. The answer's
   * `timer` is the verified value.
   */
  setTimer(chatId: string, ms: number): Promise<Chat>;
  /** A fork of this group's history seen by this device, or null. Sending is refused while there is one. */
  forkAlert(chatId: string): Promise<ForkAlert | null>;
  /** The user compared with members and accepts the server's current history: the alert is cleared and the chain pinned anew. */
  resolveFork(chatId: string): Promise<void>;
  readonly members: {
    /** Adds users to a group with the next epoch, which lists them (admins). */
    add(chatId: string, members: readonly MemberSpec[]): Promise<Chat>;
    /** Removes a member and rotates the epoch in the same step (admins). */
    remove(chatId: string, userId: string): Promise<{ epoch: number; epochRotationRequired: boolean }>;
    /** Changes a member's role (owner) and publishes an epoch with the new roles. */
    changeRole(chatId: string, userId: string, role: ChatRole): Promise<ChatMemberResult>;
    /** Leaves a group with a signed leave; an admin's client verifies it and rotates. */
    leave(chatId: string): Promise<void>;
  };
}

export interface ChatMemberResult {
  readonly userId: string;
  readonly role: ChatRole;
  readonly joinedAt: string;
  readonly joinedSeq: number;
}

export interface SendTextOptions {
  /** To resend (idempotent). */
  messageId?: string;
  /** The message id this one replies to. */
  replyTo?: string;
}

export interface MessagesApi {
  /** Encrypts and sends a text message (content kind `text`); pass `messageId` to resend (idempotent: the server keeps the first). Same as `sendText`. */
  send(chatId: string, text: string, options?: SendTextOptions): Promise<SendResult>;
  /** Sends a text message, optionally a reply (`replyTo`: a message id of this chat; its quote is filled in from its text). */
  sendText(chatId: string, text: string, options?: SendTextOptions): Promise<SendResult>;
  /** Sends any content (checked by `encodeContent`; a TypeError names a bad field). */
  sendContent(chatId: string, content: MessageContent, options?: { messageId?: string }): Promise<SendResult>;
  /** Reacts to a message with one emoji (one grapheme cluster), or takes the reaction back (`remove`). */
  react(chatId: string, messageId: string, emoji: string, options?: { remove?: boolean; messageId?: string }): Promise<SendResult>;
  /** Edits one of this user's text messages (refused locally: `unknown_message`, `not_own_message`, `not_editable`). */
  edit(chatId: string, messageId: string, text: string, options?: { messageId?: string }): Promise<SendResult>;
  /** Hides a message on this device profile only (nothing is sent; other devices and members still have it). */
  deleteForMe(chatId: string, messageId: string): Promise<void>;
  /** One page of history, decrypted and verified, with what is missing marked; failures are marked per message, never thrown. Reactions and edits are applied to their targets and hidden; messages deleted for me are left out. */
  history(chatId: string, options?: HistoryOptions): Promise<HistoryPage>;
  /** Decrypts one message as the API returns it (e.g. pushed by delivery). */
  decrypt(message: MessageJson): Promise<HistoryMessage>;
  /** Moves the read marker forward to `seq`. */
  markRead(chatId: string, seq: number): Promise<{ lastReadSeq: number; unreadCount: number }>;
  /** Counter gaps (per sender device) seen in a chat: messages the server did not deliver (yet). */
  gaps(chatId: string): Promise<{ senderDeviceId: string; from: number; to: number }[]>;
}
