// A chat opened with many unread messages: offer a digest, saying before the
// button what leaves the device in each mode (the SDK's disclosure text). On
// this device: nothing leaves it. By the digest service: the transcript is
// sealed to the service key the person pastes (published by the server's
// operator; `npm start` prints it), never to a key the server names.
import { useState, type ReactNode } from 'react';
import type { DigestMode, DigestOutcome } from '@bil/sdk';
import type { Session } from './session.js';
import { describeError } from './errors.js';

export function DigestOffer({ session, chatId, unread }: { session: Session; chatId: string; unread: number }): ReactNode {
  const [mode, setMode] = useState<DigestMode>('device');
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<DigestOutcome | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = (): void => {
    setBusy(true);
    setError(null);
    session
      .digest(chatId, mode, mode === 'server' ? key.trim() : undefined)
      .then(setOutcome)
      .catch((err: unknown) => setError(describeError(err)))
      .finally(() => setBusy(false));
  };
  return (
    <section className="digest" aria-labelledby="digest-title">
      <h3 id="digest-title">{unread} unread messages: read a summary first?</h3>
      <fieldset>
        <legend>Where the summary is made</legend>
        <label>
          <input type="radio" name="digest-mode" checked={mode === 'device'} onChange={() => setMode('device')} /> On this device
        </label>
        <label>
          <input type="radio" name="digest-mode" checked={mode === 'server'} onChange={() => setMode('server')} /> By the digest service
        </label>
      </fieldset>
      <p className="disclosure">{session.digestDisclosure(mode)}</p>
      {mode === 'server' && (
        <div className="field">
          <label htmlFor="digest-key">The digest service’s key (from your server’s operator)</label>
          <input id="digest-key" value={key} onChange={(e) => setKey(e.target.value)} autoComplete="off" spellCheck={false} />
        </div>
      )}
      <div className="row">
        <button type="button" className="primary" onClick={run} disabled={busy || (mode === 'server' && !key.trim())}>
          {busy ? 'Summarising…' : 'Summarise'}
        </button>
        <button type="button" onClick={() => session.doneWithDigest(chatId).catch((err: unknown) => setError(describeError(err)))}>
          Mark all as read
        </button>
      </div>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {outcome && <Outcome outcome={outcome} />}
    </section>
  );
}

function Outcome({ outcome }: { outcome: DigestOutcome }): ReactNode {
  if (outcome.kind === 'disabled') return <p role="status">No digest for this chat ({outcome.reason.replace(/_/g, ' ')}).</p>;
  if (outcome.kind === 'messages') return <p role="status">Only {outcome.messages.length} unread: read them below.</p>;
  return (
    <div className="summary" role="status">
      <p>
        <strong>Topic:</strong> {outcome.topic}
      </p>
      {outcome.keyPoints.length > 0 && (
        <ul>
          {outcome.keyPoints.map((k, i) => (
            <li key={i}>{k}</li>
          ))}
        </ul>
      )}
      {outcome.actions.length > 0 && (
        <ul>
          {outcome.actions.map((a, i) => (
            <li key={i}>
              {a.owner ? `${a.owner}: ` : ''}
              {a.action}
            </li>
          ))}
        </ul>
      )}
      <p className="hint">
        {outcome.messageCount} messages summarised {outcome.on === 'device' ? 'on this device (nothing left it)' : 'by the digest service'}
        {outcome.method === 'extractive' ? ', built-in summariser' : ', language model'}
        {outcome.excludedCount > 0 ? `; ${outcome.excludedCount} left out by their senders’ choice` : ''}.
      </p>
    </div>
  );
}
