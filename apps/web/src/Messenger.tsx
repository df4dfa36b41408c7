// The messenger: chat list (sorted by activity, unread counts, newest
// message), the open chat (history paging upwards, live messages, typing,
// read receipts), and the account panel. Phone width shows the list or the
// chat; desktop width both.
import { useCallback, useEffect, useState, useSyncExternalStore, type ChangeEvent, type FormEvent, type KeyboardEvent, type ReactNode } from 'react';
import { SessionEndedError, type HistoryMessage } from '@bil/sdk';
import type { ChatEntry, Session } from './session.js';
import { describeError } from './errors.js';
import { AccountPanel, SafetyNumber } from './Account.js';
import { Members, NewGroup } from './Groups.js';
import { DigestOffer } from './Digest.js';
import { ForkAlert, KeyChangeAlert } from './Alerts.js';
import { MessageList, time } from './MessageList.js';
import { Timer } from './Timer.js';

const preview = (m: HistoryMessage | null): string => (!m ? 'No messages yet' : m.ok ? m.text : m.error === 'deleted_by_sender' || m.error === 'removed_by_server' ? 'Message deleted' : 'Message that can’t be decrypted');

const LIVE_LABEL: Record<string, string> = { connecting: 'Connecting…', syncing: 'Catching up…', live: 'Connected', waiting: 'Offline, reconnecting…', closed: 'Not connected' };

export function Messenger({ session, onLock, onLoggedOut, onDeviceGone }: { session: Session; onLock: () => void; onLoggedOut: () => void; onDeviceGone: () => void }): ReactNode {
  const state = useSyncExternalStore(session.subscribe, session.getState);
  const [panel, setPanel] = useState<'chats' | 'account'>('chats');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    session.start().catch((err: unknown) => setError(describeError(err)));
    const off = session.client.on('session-ended', () => onLoggedOut());
    return () => {
      off();
    };
  }, [session, onLoggedOut]);

  useEffect(() => {
    if (state.ended) onLoggedOut();
  }, [state.ended, onLoggedOut]);

  const open = state.openChatId ? state.chats.find((e) => e.chat.chatId === state.openChatId) ?? null : null;

  return (
    <div className={`app ${open ? 'has-open-chat' : ''}`}>
      <header className="topbar">
        <h1 className="brand">bil-message</h1>
        <span className={`live live-${state.live}`} role="status">
          {LIVE_LABEL[state.live] ?? state.live}
        </span>
        <nav aria-label="Account">
          <button type="button" aria-pressed={panel === 'account'} onClick={() => setPanel(panel === 'account' ? 'chats' : 'account')}>
            {state.account.username}
          </button>
          <button type="button" onClick={onLock}>
            Lock
          </button>
          <button
            type="button"
            onClick={() => {
              session
                .logout()
                .catch(() => undefined)
                .finally(onLoggedOut);
            }}
          >
            Log out
          </button>
        </nav>
      </header>
      {error && (
        <p className="error banner" role="alert">
          {error}
        </p>
      )}
      <KeyChangeAlert session={session} />
      <ForkAlert session={session} />
      {panel === 'account' ? (
        <AccountPanel session={session} onClose={() => setPanel('chats')} onDeviceGone={onDeviceGone} />
      ) : (
        <div className="columns">
          <ChatList session={session} entries={state.chats} loaded={state.chatsLoaded} openId={state.openChatId} />
          <main className="chat-pane" aria-label="Conversation">
            {open ? <ChatView key={open.chat.chatId} session={session} entry={open} /> : <p className="empty">Pick a chat, or start one with a username.</p>}
          </main>
        </div>
      )}
    </div>
  );
}

function ChatList({ session, entries, loaded, openId }: { session: Session; entries: readonly ChatEntry[]; loaded: boolean; openId: string | null }): ReactNode {
  const [username, setUsername] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useSyncExternalStore(session.subscribe, session.getState);
  const start = (e: FormEvent): void => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    session
      .startChat(username)
      .then(() => setUsername(''))
      .catch((err: unknown) => setError(describeError(err)))
      .finally(() => setBusy(false));
  };
  return (
    <nav className="chat-list" aria-label="Chats">
      <form className="new-chat" onSubmit={start}>
        <label htmlFor="new-chat-username">New chat with</label>
        <div className="row">
          <input id="new-chat-username" value={username} onChange={(e) => setUsername(e.target.value)} placeholder="username" autoComplete="off" required />
          <button type="submit" disabled={busy}>
            Start
          </button>
        </div>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <NewGroup session={session} />
      <h2 className="visually-hidden">Chats</h2>
      {!loaded ? (
        <p role="status">Loading chats…</p>
      ) : entries.length === 0 ? (
        <p className="empty">No chats yet.</p>
      ) : (
        <ul>
          {entries.map((e) => {
            const title = session.chatTitle(e.chat);
            return (
              <li key={e.chat.chatId}>
                <button
                  type="button"
                  className="chat-item"
                  aria-current={e.chat.chatId === openId ? 'true' : undefined}
                  onClick={() => session.openChat(e.chat.chatId).catch((err: unknown) => setError(describeError(err)))}
                >
                  <span className="chat-title">{title}</span>
                  <span className="chat-time">{e.last ? time(e.last.createdAt) : ''}</span>
                  <span className="chat-preview">{preview(e.last)}</span>
                  {e.unread > 0 && (
                    <span className="badge">
                      {e.unread}
                      <span className="visually-hidden"> unread</span>
                    </span>
                  )}
                </button>
              </li>
            );
          })}
        </ul>
      )}
    </nav>
  );
}

function ChatView({ session, entry }: { session: Session; entry: ChatEntry }): ReactNode {
  const state = useSyncExternalStore(session.subscribe, session.getState);
  const chatId = entry.chat.chatId;
  const history = state.history[chatId];
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [showSafety, setShowSafety] = useState(false);
  /** The composer replies to a message, or edits one of this user's. */
  const [mode, setMode] = useState<{ kind: 'reply' | 'edit'; m: HistoryMessage } | null>(null);
  const [upload, setUpload] = useState<{ name: string; progress: number } | null>(null);
  const title = session.chatTitle(entry.chat);
  const typing = (state.typing[chatId] ?? []).map((u) => session.name(u));
  const readUpTo = state.readByPeer[chatId] ?? 0;

  const older = useCallback(() => {
    session.loadOlder(chatId).catch((err: unknown) => setError(describeError(err)));
  }, [session, chatId]);

  const send = (e: FormEvent): void => {
    e.preventDefault();
    const body = text.trim();
    if (!body) return;
    setText('');
    setError(null);
    const was = mode;
    setMode(null);
    const done = was?.kind === 'edit' ? session.edit(chatId, was.m.messageId, body) : session.send(chatId, body, was?.kind === 'reply' ? was.m.messageId : undefined);
    done.catch((err: unknown) => {
      setText(body);
      setMode(was);
      setError(err instanceof SessionEndedError ? 'Your session ended: sign in again.' : describeError(err));
    });
  };

  /** A chosen file: encrypted and uploaded with progress shown, then sent with what the composer holds as its caption. */
  const attach = (e: ChangeEvent<HTMLInputElement>): void => {
    const file = e.target.files?.[0];
    e.target.value = '';
    if (!file) return;
    const caption = text.trim();
    setError(null);
    setUpload({ name: file.name, progress: 0 });
    session
      .sendFile(chatId, file, caption, (progress) => setUpload({ name: file.name, progress }))
      .then(() => {
        if (caption) setText('');
      })
      .catch((err: unknown) => setError(describeError(err)))
      .finally(() => setUpload(null));
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>): void => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      e.currentTarget.form?.requestSubmit();
    }
  };

  return (
    <section className="chat" aria-labelledby="chat-title">
      <header className="chat-header">
        <button type="button" className="back" onClick={() => void session.openChat(null)} aria-label="Back to chats">
          ←
        </button>
        <h2 id="chat-title">{title}</h2>
        {entry.chat.type === 'personal' && entry.chat.peerUserId in state.online && <span className="presence">{state.online[entry.chat.peerUserId] ? 'online' : 'offline'}</span>}
        {entry.chat.type === 'group' && <GroupPresence session={session} chatId={chatId} />}
        {entry.chat.type === 'personal' ? (
          <button type="button" aria-expanded={showSafety} onClick={() => setShowSafety(!showSafety)}>
            Safety number
          </button>
        ) : (
          <button type="button" aria-expanded={showSafety} onClick={() => setShowSafety(!showSafety)}>
            Members
          </button>
        )}
      </header>
      {entry.chat.type === 'personal' && !state.names[entry.chat.peerUserId] && <Identify session={session} userId={entry.chat.peerUserId} />}
      {showSafety && entry.chat.type === 'personal' && <SafetyNumber session={session} userId={entry.chat.peerUserId} />}
      {showSafety && entry.chat.type === 'group' && <Members session={session} chatId={chatId} canManage={entry.chat.myRole !== 'member'} isOwner={entry.chat.myRole === 'owner'} title={title} />}
      {showSafety && <Timer session={session} chatId={chatId} current={state.timers[chatId]} alert={state.timerAlerts[chatId]} />}
      {chatId in state.digestOffers && <DigestOffer session={session} chatId={chatId} unread={state.digestOffers[chatId]!} />}
      <MessageList
        title={title}
        group={entry.chat.type === 'group'}
        myUserId={state.account.userId}
        history={history}
        pending={state.pending[chatId] ?? []}
        readUpTo={readUpTo}
        name={(u) => session.name(u)}
        onOlder={older}
        client={session.client}
        loadUntil={(messageId) => session.loadUntil(chatId, messageId)}
        handlers={{
          onReply: (m) => {
            setMode({ kind: 'reply', m });
            document.getElementById('composer-text')?.focus();
          },
          onEdit: (m) => {
            setMode({ kind: 'edit', m });
            setText(m.ok ? m.text : '');
            document.getElementById('composer-text')?.focus();
          },
          onReact: (m, emoji, remove) => void session.react(chatId, m.messageId, emoji, remove).catch((err: unknown) => setError(describeError(err))),
          onDelete: (m) => void session.deleteForMe(chatId, m.messageId).catch((err: unknown) => setError(describeError(err))),
          onDeleteForEveryone: (m) => void session.deleteForEveryone(chatId, m.messageId).catch((err: unknown) => setError(describeError(err))),
        }}
      />
      <p className="typing" aria-live="polite">
        {typing.length > 0 ? `${typing.join(', ')} ${typing.length === 1 ? 'is' : 'are'} typing…` : ''}
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {mode && (
        <div className="composing" role="status">
          <span>
            {mode.kind === 'reply' ? `Replying to ${mode.m.senderUserId === state.account.userId ? 'yourself' : session.name(mode.m.senderUserId)}: ` : 'Editing your message: '}
            <q>{mode.m.ok ? [...mode.m.text].slice(0, 80).join('') : ''}</q>
          </span>
          <button
            type="button"
            onClick={() => {
              if (mode.kind === 'edit') setText('');
              setMode(null);
            }}
          >
            Cancel {mode.kind === 'reply' ? 'reply' : 'edit'}
          </button>
        </div>
      )}
      {upload && (
        <div className="composing" role="status">
          <label htmlFor="upload-progress">Sending {upload.name}</label>
          <progress id="upload-progress" max={1} value={upload.progress}>
            {Math.round(upload.progress * 100)}%
          </progress>
        </div>
      )}
      <form className="composer" onSubmit={send}>
        <label className="attach button" title="Attach a file">
          <input type="file" className="visually-hidden" onChange={attach} disabled={!!upload} aria-label="Attach a file" />
          Attach
        </label>
        <label htmlFor="composer-text" className="visually-hidden">
          Message to {title}
        </label>
        <textarea
          id="composer-text"
          value={text}
          onChange={(e) => {
            setText(e.target.value);
            if (e.target.value) session.typing(chatId);
          }}
          onKeyDown={onKeyDown}
          rows={2}
          placeholder="Write a message (Enter sends, Shift+Enter: new line)"
        />
        <button type="submit" className="primary">
          {mode?.kind === 'edit' ? 'Save' : 'Send'}
        </button>
      </form>
    </section>
  );
}

/** A chat someone else started: the API names no user by id, so the person says who they think it is and the directory confirms. */
function Identify({ session, userId }: { session: Session; userId: string }): ReactNode {
  const [username, setUsername] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const check = (e: FormEvent): void => {
    e.preventDefault();
    setNote(null);
    session
      .identify(userId, username)
      .then((ok) => setNote(ok ? null : `${username.trim()} is someone else: this chat is not with them.`))
      .catch((err: unknown) => setNote(describeError(err)));
  };
  return (
    <form className="identify" onSubmit={check}>
      <label htmlFor="identify-username">This device doesn't know this person's username yet. Who do you think it is?</label>
      <div className="row">
        <input id="identify-username" value={username} onChange={(e) => setUsername(e.target.value)} placeholder="username" autoComplete="off" required />
        <button type="submit">Check</button>
      </div>
      {note && (
        <p className="error" role="alert">
          {note}
        </p>
      )}
    </form>
  );
}

/** Who of a group's members (other than this user) is online, from the presence delivery sends to people sharing a chat. */
function GroupPresence({ session, chatId }: { session: Session; chatId: string }): ReactNode {
  const state = useSyncExternalStore(session.subscribe, session.getState);
  const others = (state.groupMembers[chatId] ?? []).filter((u) => u !== state.account.userId);
  if (others.length === 0) return null;
  const online = others.filter((u) => state.online[u]);
  return (
    <span className="presence" title={online.map((u) => session.name(u)).join(', ')}>
      {online.length === 0 ? 'nobody else online' : `online: ${online.map((u) => session.name(u)).join(', ')}`}
    </span>
  );
}
