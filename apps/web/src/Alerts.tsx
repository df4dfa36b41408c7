// Blocking alerts: what the SDK refuses for the person's safety and only the
// person can settle. A contact's identity key changed (sending to them stays
// refused until the key shown is accepted), and a group whose history forked
// (the server showed two different signed histories; sending stays refused
// until the person compared the members with the others and accepts the
// current one). Each is a modal <dialog> with role="alertdialog": the rest of
// the page is inert while it is open, focus stays inside (Tab cycles through
// its buttons), Escape does not dismiss it.
import { useEffect, useRef, useState, useSyncExternalStore, type KeyboardEvent, type ReactNode } from 'react';
import type { Session } from './session.js';
import { describeError } from './errors.js';

/** A modal alert dialog: opened while `open`, focus trapped inside, not closed by Escape. */
function AlertDialog({ open, id, title, children }: { open: boolean; id: string; title: string; children: ReactNode }): ReactNode {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) {
      d.showModal();
      d.querySelector<HTMLElement>('button.primary, button')?.focus();
    }
    if (!open && d.open) d.close();
  }, [open]);
  // showModal makes the page inert; this keeps Tab and Shift+Tab cycling inside the dialog as well.
  const trap = (e: KeyboardEvent<HTMLDialogElement>): void => {
    if (e.key !== 'Tab') return;
    const focusable = [...e.currentTarget.querySelectorAll<HTMLElement>('button:not([disabled]), input, textarea, [tabindex="0"]')];
    if (focusable.length === 0) return;
    const first = focusable[0]!;
    const last = focusable[focusable.length - 1]!;
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  };
  if (!open) return null;
  return (
    <dialog ref={dialog} role="alertdialog" aria-modal="true" className="alert" aria-labelledby={`${id}-title`} aria-describedby={`${id}-text`} onCancel={(e) => e.preventDefault()} onKeyDown={trap}>
      <h2 id={`${id}-title`}>{title}</h2>
      {children}
    </dialog>
  );
}

/** Blocking: a contact's identity key changed. Sending to them stays refused (by the SDK) until the person accepts the new key. */
export function KeyChangeAlert({ session }: { session: Session }): ReactNode {
  const state = useSyncExternalStore(session.subscribe, session.getState);
  const [error, setError] = useState<string | null>(null);
  const userId = Object.keys(state.keyChanges).find((u) => !state.keyChangesLater.includes(u));
  const name = userId ? session.name(userId) : '';
  return (
    <AlertDialog open={userId !== undefined} id="key-change" title={`${name}’s safety number changed`}>
      <p id="key-change-text">
        {name} has a new identity key. That happens when they reset their account on a new device, or when someone is trying to read your messages. Nothing more is sent to {name} until you accept the new key; compare the new safety number with them (in person or on a call) first.
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="row">
        <button type="button" className="primary" onClick={() => userId && session.acceptKeyChange(userId).catch((err: unknown) => setError(describeError(err)))}>
          Accept the new key
        </button>
        <button type="button" onClick={() => userId && session.keyChangeLater(userId)}>
          Not now (sending to {name} stays blocked)
        </button>
      </div>
    </AlertDialog>
  );
}

/** Blocking: a group's history forked. Sending in it stays refused (by the SDK) until the person accepts the current history. */
export function ForkAlert({ session }: { session: Session }): ReactNode {
  const state = useSyncExternalStore(session.subscribe, session.getState);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const chatId = Object.keys(state.forks).find((c) => !state.forksLater.includes(c));
  const fork = chatId ? state.forks[chatId] : undefined;
  const entry = chatId ? state.chats.find((e) => e.chat.chatId === chatId) : undefined;
  const title = entry ? session.chatTitle(entry.chat) : 'this group';
  const accept = (): void => {
    if (!chatId) return;
    setBusy(true);
    setError(null);
    session
      .resolveFork(chatId)
      .catch((err: unknown) => setError(describeError(err)))
      .finally(() => setBusy(false));
  };
  return (
    <AlertDialog open={fork !== undefined} id="fork" title={`The history of “${title}” forked`}>
      <div id="fork-text">
        <p>
          The server showed this device two different histories of the group (they part at change {fork?.epoch ?? '?'} of its members{fork?.userId ? `, seen in a message from ${session.name(fork.userId)}` : ''}). Either a member’s app signed two different changes, or the server is
          showing different members to different people. Messages are not sent to this group until you decide; what was verified before stays readable.
        </p>
        <p>Compare the member list with the other members (in person or on a call). If it is right, accept the current history; otherwise leave the group.</p>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="row">
        <button type="button" className="primary" onClick={accept} disabled={busy}>
          I compared the members: accept the current history
        </button>
        <button type="button" onClick={() => chatId && session.forkLater(chatId)}>
          Not now (sending stays blocked)
        </button>
      </div>
    </AlertDialog>
  );
}
