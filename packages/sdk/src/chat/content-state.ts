// What reactions and edits (docs/protocol.md "Message content") make of a
// chat's messages, on this client: pure bookkeeping, no I/O. Each verified
// message is noted once (order does not matter: an edit or reaction may be
// seen before its target); `view` and `apply` give a message its current
// text, its edit history and its reactions, aggregated per emoji.
//
// The rule the server can't enforce: an edit applies only when its envelope's
// (signed, verified) sender user is the target's sender user; anything else
// is ignored and reported (`not_own_message`); an edit of anything but a text
// message is `not_editable`. Reactions: per user and emoji, the latest
// (highest seq) add or remove wins.
import type { DecodedContent } from '@bil/crypto';

/** One applied edit: the new text, the editor's signed clock (ms) and the edit message's id. */
export interface EditRecord {
  readonly text: string;
  readonly at: number;
  readonly messageId: string;
}

/** Reactions on a message: emoji → user ids (sorted) that reacted with it. */
export type Reactions = Readonly<Record<string, readonly string[]>>;

export type IgnoredReason = 'not_own_message' | 'not_editable';

/** An edit this client refused to apply (a reaction is never refused, but a reaction to a reaction or edit is simply not shown). */
export interface IgnoredContent {
  readonly chatId: string;
  /** The edit message's id and seq, and who sent it (signed). */
  readonly messageId: string;
  readonly seq: number;
  readonly senderUserId: string;
  /** The message it tried to edit. */
  readonly target: string;
  readonly reason: IgnoredReason;
}

/** What content bookkeeping needs of a verified message. */
export interface NotedMessage {
  readonly chatId: string;
  readonly messageId: string;
  readonly seq: number;
  readonly senderUserId: string;
  readonly timestamp: number;
  readonly content: DecodedContent;
}

/** A message's current state from reactions and edits. */
export interface ContentView {
  /** The current text: the original's, or the latest applied edit's. */
  readonly text: string;
  /** Applied edits, oldest first (empty: never edited). */
  readonly edited: readonly EditRecord[];
  readonly reactions: Reactions;
}

interface Origin {
  readonly senderUserId: string;
  readonly kind: DecodedContent['kind'];
  readonly text: string;
}
interface Mark {
  readonly on: boolean;
  readonly seq: number;
}
interface Edit extends EditRecord {
  readonly editorUserId: string;
  readonly seq: number;
}

/** Every message kind that changes another message rather than being shown. */
export function isUpdate(content: DecodedContent): content is Extract<DecodedContent, { kind: 'reaction' | 'edit' }> {
  return content.kind === 'reaction' || content.kind === 'edit';
}

/** Reactions and edits of one chat, as this client has seen them. */
export class ContentState {
  readonly #origins = new Map<string, Origin>();
  /** target → `${userId} ${emoji}` → latest mark. */
  readonly #reactions = new Map<string, Map<string, Mark>>();
  /** target → edit message id → edit. */
  readonly #edits = new Map<string, Map<string, Edit>>();

  /** Records a verified message (again is harmless). */
  note(m: NotedMessage): void {
    const c = m.content;
    this.#origins.set(m.messageId, { senderUserId: m.senderUserId, kind: c.kind, text: c.kind === 'text' ? c.text : '' });
    if (c.kind === 'reaction') {
      const marks = this.#reactions.get(c.target) ?? new Map<string, Mark>();
      const key = `${m.senderUserId} ${c.emoji}`;
      const prev = marks.get(key);
      if (!prev || prev.seq <= m.seq) marks.set(key, { on: c.remove !== true, seq: m.seq });
      this.#reactions.set(c.target, marks);
    } else if (c.kind === 'edit') {
      const edits = this.#edits.get(c.target) ?? new Map<string, Edit>();
      edits.set(m.messageId, { text: c.text, at: m.timestamp, messageId: m.messageId, editorUserId: m.senderUserId, seq: m.seq });
      this.#edits.set(c.target, edits);
    }
  }

  /** Who sent a message and what kind it is, if this client has seen it. */
  origin(messageId: string): { readonly senderUserId: string; readonly kind: DecodedContent['kind']; readonly text: string } | undefined {
    return this.#origins.get(messageId);
  }

  /** Why an edit message is not applied (undefined: applied, or its target not seen yet). */
  refusal(m: NotedMessage): IgnoredReason | undefined {
    if (m.content.kind !== 'edit') return undefined;
    const target = this.#origins.get(m.content.target);
    if (!target) return undefined;
    if (target.senderUserId !== m.senderUserId) return 'not_own_message';
    if (target.kind !== 'text') return 'not_editable';
    return undefined;
  }

  /** The current state of a message. */
  view(messageId: string): ContentView {
    const origin = this.#origins.get(messageId);
    const edited: EditRecord[] = [];
    if (origin?.kind === 'text') {
      const edits = [...(this.#edits.get(messageId)?.values() ?? [])].filter((e) => e.editorUserId === origin.senderUserId).sort((a, b) => a.seq - b.seq || a.at - b.at);
      for (const e of edits) edited.push({ text: e.text, at: e.at, messageId: e.messageId });
    }
    const byEmoji = new Map<string, string[]>();
    for (const [key, mark] of this.#reactions.get(messageId) ?? []) {
      if (!mark.on) continue;
      const space = key.indexOf(' ');
      const user = key.slice(0, space);
      const emoji = key.slice(space + 1);
      byEmoji.set(emoji, [...(byEmoji.get(emoji) ?? []), user]);
    }
    const reactions: Record<string, readonly string[]> = {};
    for (const [emoji, users] of [...byEmoji].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) reactions[emoji] = users.sort();
    return { text: edited.at(-1)?.text ?? origin?.text ?? '', edited, reactions };
  }
}

/**
 * Notes a list of verified messages, then returns the ones to show with
 * their current state (reactions and edits themselves hidden, and the ids in
 * `hidden`), and the edits refused.
 */
export function applyContent<M extends NotedMessage>(
  state: ContentState,
  messages: readonly M[],
  hidden: ReadonlySet<string> = new Set(),
): { messages: (M & ContentView)[]; ignored: IgnoredContent[] } {
  for (const m of messages) state.note(m);
  const shown: (M & ContentView)[] = [];
  const ignored: IgnoredContent[] = [];
  for (const m of messages) {
    if (isUpdate(m.content)) {
      const reason = state.refusal(m);
      if (reason) ignored.push({ chatId: m.chatId, messageId: m.messageId, seq: m.seq, senderUserId: m.senderUserId, target: m.content.target, reason });
      continue;
    }
    if (hidden.has(m.messageId)) continue;
    shown.push({ ...m, ...state.view(m.messageId) });
  }
  return { messages: shown, ignored };
}
