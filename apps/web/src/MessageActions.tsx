// What a message row shows beyond its text (sdk.md "Replies, reactions,
// edits"): the quote of the message it replies to (a button: jump to it), its
// reactions (counts, who reacted, toggle one's own), "(edited)" with the edit
// history on demand, and the actions (reply, react from a small picker, edit
// one's own text message, delete for me).
import { useState, type ReactNode } from 'react';
import type { HistoryMessage } from '@bil/sdk';
import { QUICK_REACTIONS, reactedBy, replyOf } from './message-updates.js';
import { time } from './MessageList.js';

export interface MessageHandlers {
  onReply: (m: HistoryMessage) => void;
  onEdit: (m: HistoryMessage) => void;
  onReact: (m: HistoryMessage, emoji: string, remove: boolean) => void;
  onDelete: (m: HistoryMessage) => void;
  onDeleteForEveryone: (m: HistoryMessage) => void;
  onJump: (messageId: string) => void;
}

/** The quote above a reply: the text its sender quoted (signed by them), a button that shows the original. */
export function Quote({ m, name, onJump }: { m: HistoryMessage; name: (messageId: string) => string | null; onJump: (messageId: string) => void }): ReactNode {
  const reply = replyOf(m);
  if (!reply) return null;
  const who = name(reply.messageId);
  return (
    <button type="button" className="quote" onClick={() => onJump(reply.messageId)} title="Show the message replied to">
      <span className="visually-hidden">Reply to </span>
      {who && <span className="quote-sender">{who}</span>}
      <span className="visually-hidden">: </span>
      <span className="quote-text">{reply.quote || '(no text)'}</span>
    </button>
  );
}

export function Reactions({ m, myUserId, name, onReact }: { m: HistoryMessage; myUserId: string; name: (userId: string) => string; onReact: MessageHandlers['onReact'] }): ReactNode {
  if (!m.ok || !m.reactions) return null;
  const entries = Object.entries(m.reactions).filter(([, users]) => users.length > 0);
  if (entries.length === 0) return null;
  return (
    <ul className="reactions" aria-label="Reactions">
      {entries.map(([emoji, users]) => {
        const mine = users.includes(myUserId);
        const who = users.map((u) => (u === myUserId ? 'you' : name(u))).join(', ');
        return (
          <li key={emoji}>
            <button type="button" className="reaction" aria-pressed={mine} title={who} aria-label={`${emoji} ${users.length}: ${who}${mine ? ' (select to take yours back)' : ''}`} onClick={() => onReact(m, emoji, mine)}>
              {emoji} {users.length}
            </button>
          </li>
        );
      })}
    </ul>
  );
}

/** "(edited)": a button showing the earlier versions (the original first). */
export function Edited({ m, original }: { m: HistoryMessage; original: string }): ReactNode {
  const [open, setOpen] = useState(false);
  if (!m.ok || !m.edited || m.edited.length === 0) return null;
  return (
    <>
      <button type="button" className="link edited" aria-expanded={open} onClick={() => setOpen(!open)}>
        (edited)
      </button>
      {open && (
        <ol className="edit-history" aria-label="Edit history">
          <li>
            Original: <span>{original}</span>
          </li>
          {m.edited.map((e) => (
            <li key={e.messageId}>
              {time(new Date(e.at).toISOString())}: <span>{e.text}</span>
            </li>
          ))}
        </ol>
      )}
    </>
  );
}

/** The actions of one message, behind a small "…" button so rows stay quiet. */
export function Actions({ m, mine, myUserId, handlers }: { m: HistoryMessage; mine: boolean; myUserId: string; handlers: MessageHandlers }): ReactNode {
  const [open, setOpen] = useState(false);
  if (!m.ok) return null;
  const editable = mine && m.content?.kind === 'text';
  const run = (f: () => void) => () => {
    setOpen(false);
    f();
  };
  return (
    <span className="actions">
      <button type="button" className="link more" aria-expanded={open} aria-label="Message actions" onClick={() => setOpen(!open)}>
        …
      </button>
      {open && (
        <span className="action-bar" role="group" aria-label="Message actions">
          <button type="button" onClick={run(() => handlers.onReply(m))}>
            Reply
          </button>
          {QUICK_REACTIONS.map((e) => {
            const had = reactedBy(m, e, myUserId);
            return (
              <button key={e} type="button" className="pick" aria-pressed={had} aria-label={`React ${e}`} onClick={run(() => handlers.onReact(m, e, had))}>
                {e}
              </button>
            );
          })}
          {editable && (
            <button type="button" onClick={run(() => handlers.onEdit(m))}>
              Edit
            </button>
          )}
          <button type="button" onClick={run(() => handlers.onDelete(m))}>
            Delete for me
          </button>
          {mine && (
            <button type="button" className="danger" onClick={run(() => handlers.onDeleteForEveryone(m))}>
              Delete for everyone
            </button>
          )}
        </span>
      )}
    </span>
  );
}
