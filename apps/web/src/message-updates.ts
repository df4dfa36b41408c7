// Replies, reactions, edits and delete-for-me applied to the loaded history
// (sdk.md "Replies, reactions, edits"): the SDK verifies and applies them;
// the app only puts the current state (live `updated`) into the rows it holds.
import type { HistoryMessage, MessageUpdate } from '@bil/sdk';

/** The emoji the picker offers (any one emoji is valid; these are the quick ones). */
export const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🙏'] as const;

/** The loaded messages with an update's current text, edit history and reactions on its target (same array if not loaded). */
export function applyUpdate(messages: readonly HistoryMessage[], u: MessageUpdate): readonly HistoryMessage[] {
  const i = messages.findIndex((m) => m.messageId === u.messageId);
  if (i < 0) return messages;
  const next = messages.slice();
  next[i] = { ...messages[i]!, text: u.text, edited: u.edited, reactions: u.reactions } as HistoryMessage;
  return next;
}

/** The reply a message is, if any: the target's id and the quote it carries (signed by its sender, shown as theirs). */
export function replyOf(m: HistoryMessage): { messageId: string; quote: string } | null {
  if (!m.ok || m.content?.kind !== 'text' || !m.content.reply_to) return null;
  return { messageId: m.content.reply_to.message_id, quote: m.content.reply_to.quote ?? '' };
}

/** Whether the message's latest state has this user's reaction with this emoji. */
export const reactedBy = (m: HistoryMessage, emoji: string, userId: string): boolean => (m.ok ? (m.reactions?.[emoji] ?? []).includes(userId) : false);
