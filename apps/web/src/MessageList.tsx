// The open chat's messages as a virtualised list (@tanstack/react-virtual):
// only the rows in view (and a few around them) are in the DOM, each measured
// as it renders (rows differ in height). When older pages load above, the
// view stays on the message it showed; when new messages come while the view
// is at the bottom, it follows them. The scroller takes the focus (arrow keys,
// Page Up/Down, Home/End scroll it); rows stay an ordered list with their
// position in it (aria-posinset/setsize), and new incoming messages are read
// out by a separate role="log" region (rows entering the DOM while scrolling
// must not be announced).
import { useLayoutEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import type { BilClient, HistoryMessage } from '@bil/sdk';
import { AttachmentView } from './AttachmentView.js';
import type { ChatHistory, PendingMessage } from './session.js';
import { Actions, Edited, Quote, Reactions, type MessageHandlers } from './MessageActions.js';

/** A time of day for a message (also the chat list's). */
export const time = (iso: string): string => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
};

/** Closer than this to the bottom counts as "at the bottom". */
const AT_BOTTOM_PX = 80;
/** Closer than this to the top loads the page before. */
const NEAR_TOP_PX = 200;

export function MessageList(props: {
  title: string;
  group: boolean;
  myUserId: string;
  history: ChatHistory | undefined;
  pending: readonly PendingMessage[];
  readUpTo: number;
  name: (userId: string) => string;
  onOlder: () => void;
  /** Loads older pages until the message is loaded; whether it is. */
  loadUntil: (messageId: string) => Promise<boolean>;
  handlers: Omit<MessageHandlers, 'onJump'>;
  client: BilClient;
}): ReactNode {
  const { history, myUserId } = props;
  const messages = history?.messages ?? [];
  // A message the live connection delivered before its send was acknowledged is shown once, as sent.
  const pending = useMemo(() => {
    if (props.pending.length === 0) return props.pending;
    const shown = new Set(messages.slice(-256).map((m) => m.messageId));
    return props.pending.filter((p) => !shown.has(p.messageId));
  }, [props.pending, messages]);
  const scroller = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: messages.length,
    getScrollElement: () => scroller.current,
    estimateSize: () => 64,
    overscan: 8,
    getItemKey: (i) => messages[i]!.seq,
    paddingStart: 12,
    paddingEnd: 6,
  });
  /** What the last render showed: older messages prepended keep the view where it was; new ones are followed from the bottom. */
  const last = useRef({ firstSeq: -1, lastSeq: -1, count: 0, atBottom: true, scrollTop: 0, scrollHeight: 0 });
  let lastOutgoing: HistoryMessage | undefined;
  for (let i = messages.length - 1; i >= 0 && !lastOutgoing; i--) if (messages[i]!.senderUserId === myUserId) lastOutgoing = messages[i];

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const prev = last.current;
    const firstSeq = messages[0]?.seq ?? -1;
    const lastSeq = messages.at(-1)?.seq ?? -1;
    if (prev.count > 0 && firstSeq < prev.firstSeq) {
      // Older messages came in above: move down by their (estimated, then measured) height, so the same message stays in view.
      // The list's height already counts them (estimated until measured; the virtualiser corrects the view as rows above it are measured).
      el.scrollTop = prev.scrollTop + (el.scrollHeight - prev.scrollHeight);
    } else if (messages.length > 0 && (prev.count === 0 || (lastSeq > prev.lastSeq && (prev.atBottom || messages.at(-1)?.senderUserId === myUserId)))) {
      virtualizer.scrollToIndex(messages.length - 1, { align: 'end' });
      if (pending.length > 0) el.scrollTop = el.scrollHeight;
    }
    last.current = { firstSeq, lastSeq, count: messages.length, atBottom: prev.atBottom, scrollTop: el.scrollTop, scrollHeight: el.scrollHeight };
  }, [messages]);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && pending.length > 0) el.scrollTop = el.scrollHeight;
  }, [pending.length]);

  const onScroll = (): void => {
    const el = scroller.current;
    if (!el) return;
    last.current.atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < AT_BOTTOM_PX;
    last.current.scrollTop = el.scrollTop;
    last.current.scrollHeight = el.scrollHeight;
    if (el.scrollTop < NEAR_TOP_PX && history?.hasMore && !history.loading) props.onOlder();
  };

  const [highlight, setHighlight] = useState<string | null>(null);
  const [jumpNote, setJumpNote] = useState<string | null>(null);
  const [jumpTo, setJumpTo] = useState<string | null>(null);
  /** A quote's original: loaded (older pages if needed), then scrolled to, focused and marked for a moment (the effect below). */
  const jump = (messageId: string): void => {
    setJumpNote(null);
    void props.loadUntil(messageId).then((found) => {
      if (found) setJumpTo(messageId);
      else setJumpNote('The original message isn’t available (deleted, or too far back).');
    });
  };
  useLayoutEffect(() => {
    if (!jumpTo) return;
    const i = messages.findIndex((m) => m.messageId === jumpTo);
    if (i < 0) return;
    setJumpTo(null);
    setHighlight(jumpTo);
    virtualizer.scrollToIndex(i, { align: 'center' });
    requestAnimationFrame(() => requestAnimationFrame(() => scroller.current?.querySelector<HTMLElement>(`[data-message-id="${jumpTo}"]`)?.focus()));
    const shown = jumpTo;
    setTimeout(() => setHighlight((h) => (h === shown ? null : h)), 2500);
  }, [jumpTo, messages]);
  const senderOf = (messageId: string): string | null => {
    const t = messages.find((m) => m.messageId === messageId);
    return t ? (t.senderUserId === myUserId ? 'You' : props.name(t.senderUserId)) : null;
  };
  const handlers: MessageHandlers = { ...props.handlers, onJump: jump };

  const incoming = messages.filter((m) => m.senderUserId !== myUserId).slice(-3);
  const items = virtualizer.getVirtualItems();
  return (
    <>
      {history?.hasMore && (
        <button type="button" className="older" onClick={props.onOlder} disabled={history.loading}>
          {history.loading ? 'Loading…' : 'Load older messages'}
        </button>
      )}
      {jumpNote && <p role="status">{jumpNote}</p>}
      {!history || (history.loading && messages.length === 0) ? <p role="status">Loading messages…</p> : null}
      <div className="messages" ref={scroller} onScroll={onScroll} tabIndex={0} role="region" aria-label={`Messages with ${props.title}`}>
        <ol className="rows" style={{ height: virtualizer.getTotalSize() }}>
          {items.map((row) => {
            const m = messages[row.index]!;
            const mine = m.senderUserId === myUserId;
            return (
              <li key={row.key} ref={virtualizer.measureElement} data-index={row.index} data-seq={m.seq} aria-posinset={row.index + 1} aria-setsize={history?.hasMore ? -1 : messages.length} className="row" style={{ transform: `translateY(${row.start}px)` }}>
                <div className={`message ${mine ? 'mine' : 'theirs'} ${m.ok ? '' : 'undecryptable'} ${highlight === m.messageId ? 'highlight' : ''}`} data-message-id={m.messageId} tabIndex={-1}>
                  <Quote m={m} name={senderOf} onJump={jump} />
                  {!mine && props.group ? <span className="sender">{props.name(m.senderUserId)}: </span> : <span className="visually-hidden">{mine ? 'You' : props.name(m.senderUserId)}: </span>}
                  <span className="text">{m.ok ? m.text : m.error === 'deleted_by_sender' ? 'Message deleted' : m.error === 'removed_by_server' ? 'Message removed (it expired, or the server removed it)' : m.error === 'out_of_date_epoch' ? 'Sent by a member whose app is out of date' : 'This message can’t be decrypted on this device'}</span>
                  <AttachmentView m={m} client={props.client} />
                  <span className="meta">
                    {time(m.createdAt)}
                    {mine && m === lastOutgoing && props.readUpTo >= m.seq ? ' · Read' : ''} <Edited m={m} original={m.ok && m.content?.kind === 'text' ? m.content.text : ''} />
                    <Actions m={m} mine={mine} myUserId={myUserId} handlers={handlers} />
                  </span>
                  <Reactions m={m} myUserId={myUserId} name={props.name} onReact={handlers.onReact} />
                </div>
              </li>
            );
          })}
        </ol>
        {pending.length > 0 && (
          <ol className="pending-list" aria-label="Not sent yet">
            {pending.map((p) => (
              <li key={p.messageId} className="message mine pending">
                <span className="visually-hidden">You: </span>
                <span className="text">{p.text}</span>
                <span className="meta">{p.status === 'sending' ? 'Sending…' : 'Not sent yet: it goes when you are back online'}</span>
              </li>
            ))}
          </ol>
        )}
      </div>
      <div className="visually-hidden" role="log" aria-live="polite" aria-label={`New messages from ${props.title}`}>
        {incoming.map((m) => (
          <p key={m.seq}>
            {props.name(m.senderUserId)}: {m.ok ? m.text : 'a message that can’t be decrypted'}
          </p>
        ))}
      </div>
    </>
  );
}
