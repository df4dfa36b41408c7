// The account panel's notifications switch (docs/push.md): on, this browser is
// woken by a push that says only "New messages in N chats" while the app is
// closed; off, the subscription is removed from the server and the browser.
import { useEffect, useState, type ReactNode } from 'react';
import type { BilClient } from '@bil/sdk';
import { describeError } from './errors.js';
import { currentSubscription, disablePush, enablePush, pushSupported } from './push.js';

export function Notifications({ client }: { client: BilClient }): ReactNode {
  const [on, setOn] = useState<boolean | null>(null);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  useEffect(() => {
    void currentSubscription()
      .then((s) => setOn(!!s))
      .catch(() => setOn(false));
  }, []);
  if (!pushSupported()) return null;

  const toggle = (): void => {
    setBusy(true);
    setNote(null);
    (on ? disablePush(client) : enablePush(client))
      .then(() => {
        setNote(on ? 'Notifications are off for this browser.' : 'Notifications are on: when the app is closed, this browser shows “New messages”, never who wrote or what.');
        setOn(!on);
      })
      .catch((err: unknown) => setNote(describeError(err)))
      .finally(() => setBusy(false));
  };

  return (
    <section aria-labelledby="notifications-title">
      <h3 id="notifications-title">Notifications</h3>
      <p>The server only tells this browser how many chats have new messages: no names, no text.</p>
      <button type="button" role="switch" aria-checked={on === true} disabled={busy || on === null} onClick={toggle}>
        New message notifications: {on ? 'on' : 'off'}
      </button>
      {note && <p role="status">{note}</p>}
    </section>
  );
}
