// The chat's disappearing-message timer (sdk.md chats.setTimer), in the chat's
// panel (Safety number / Members): new messages are erased by the server after
// the time chosen. The value shown is the verified one (the signed statement
// of a personal chat, the signed record of a group; protocol.md
// "Disappearing messages"), with a warning when the server's differs; the
// chat list doesn't carry it, so it shows what this run set or verified.
import { useState, type ReactNode } from 'react';
import type { TimerAlertEvent } from '@bil/sdk';
import type { Session } from './session.js';
import { describeError } from './errors.js';

const CHOICES: readonly [number, string][] = [
  [0, 'Off'],
  [5 * 60_000, '5 minutes'],
  [60 * 60_000, '1 hour'],
  [24 * 60 * 60_000, '1 day'],
  [7 * 24 * 60 * 60_000, '1 week'],
];

export function Timer({ session, chatId, current, alert }: { session: Session; chatId: string; current: number | undefined; alert?: TimerAlertEvent | undefined }): ReactNode {
  const [note, setNote] = useState<string | null>(null);
  const change = (ms: number): void => {
    setNote(null);
    session
      .setTimer(chatId, ms)
      .then(() => setNote(ms ? `New messages disappear after ${CHOICES.find(([v]) => v === ms)?.[1] ?? `${ms / 1000} s`}.` : 'Messages no longer disappear.'))
      .catch((err: unknown) => setNote(describeError(err)));
  };
  return (
    <div className="timer">
      <label htmlFor={`timer-select-${chatId}`}>
        Disappearing messages
      </label>
      <select id={`timer-select-${chatId}`} value={current ?? ''} onChange={(e) => change(Number(e.target.value))}>
        {current === undefined && <option value="">Choose…</option>}
        {CHOICES.map(([ms, label]) => (
          <option key={ms} value={ms}>
            {label}
          </option>
        ))}
        {current !== undefined && !CHOICES.some(([v]) => v === current) && <option value={current}>{current / 1000} s</option>}
      </select>
      {alert && (
        <p role="alert" className="warning">
          {alert.reason === 'server_differs'
            ? `The server applies another timer (${alert.serverMs ? `${alert.serverMs / 1000} s` : 'off'}) than the one set in this chat: it may delete messages earlier or keep them longer.`
            : 'The server showed a timer setting that doesn’t verify (or an older one): the last verified setting is shown.'}
        </p>
      )}
      {note && <p role="status">{note}</p>}
    </div>
  );
}
