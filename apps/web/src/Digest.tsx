// A chat opened with many unread messages: offer a digest, saying before the
// button what leaves the device in each mode (the SDK's disclosure text). On
// this device: nothing leaves it. By the digest service: the transcript is
// sealed to the service key the person pastes (published by the server's
// operator; `npm start` prints it), never to a key the server names. With the
// person's own model: this browser sends the decrypted messages to an
// OpenAI-compatible endpoint with the person's API key; offered only for the
// origins the gateway's operator allowed (GATEWAY_WEB_MODEL_ORIGINS, the page's
// CSP connect-src, listed in /config.json). The API key stays in this page's
// memory: never stored, never sent to the bil server.
import { useEffect, useState, type ReactNode } from 'react';
import type { DigestMode, DigestOutcome } from '@bil/sdk';
import type { Session } from './session.js';
import { describeError } from './errors.js';

/** The origins this page may call for a model digest (read once from the gateway). */
let modelOriginsOnce: Promise<string[]> | undefined;
function modelOrigins(): Promise<string[]> {
  modelOriginsOnce ??= fetch('/config.json')
    .then((r) => (r.ok ? (r.json() as Promise<{ model_origins?: unknown }>) : { model_origins: [] }))
    .then((c) => (Array.isArray(c.model_origins) ? c.model_origins.filter((o: unknown): o is string => typeof o === 'string') : []))
    .catch(() => []);
  return modelOriginsOnce;
}

/** The endpoint's origin when it is one the page may call, else a reason. */
function checkEndpoint(url: string, allowed: readonly string[]): { ok: true } | { ok: false; reason: string } {
  let origin: string;
  try {
    origin = new URL(url).origin;
  } catch {
    return { ok: false, reason: 'Enter the endpoint as a URL, e.g. https://api.openai.com/v1' };
  }
  return allowed.includes(origin) ? { ok: true } : { ok: false, reason: `This server allows model endpoints at ${allowed.join(', ')} only` };
}

export function DigestOffer({ session, chatId, unread }: { session: Session; chatId: string; unread: number }): ReactNode {
  const [mode, setMode] = useState<DigestMode>('device');
  const [key, setKey] = useState('');
  const [origins, setOrigins] = useState<string[]>([]);
  const [endpoint, setEndpoint] = useState('');
  const [modelName, setModelName] = useState('');
  const [apiKey, setApiKey] = useState('');
  useEffect(() => {
    let live = true;
    void modelOrigins().then((o) => {
      if (!live) return;
      setOrigins(o);
      setEndpoint((e) => e || (o[0] ? `${o[0]}/v1` : ''));
    });
    return () => {
      live = false;
    };
  }, []);
  const endpointCheck = checkEndpoint(endpoint.trim(), origins);
  const ready = mode === 'server' ? key.trim() !== '' : mode === 'model' ? endpointCheck.ok && apiKey !== '' : true;
  const [busy, setBusy] = useState(false);
  const [outcome, setOutcome] = useState<DigestOutcome | null>(null);
  const [error, setError] = useState<string | null>(null);
  const run = (): void => {
    setBusy(true);
    setError(null);
    const extra =
      mode === 'server'
        ? { serviceIdentityKey: key.trim() }
        : mode === 'model'
          ? { model: { baseURL: endpoint.trim(), apiKey, ...(modelName.trim() ? { model: modelName.trim() } : {}) } }
          : {};
    session
      .digest(chatId, mode, extra)
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
        {origins.length > 0 && (
          <label>
            <input type="radio" name="digest-mode" checked={mode === 'model'} onChange={() => setMode('model')} /> With my own model
          </label>
        )}
      </fieldset>
      <p className="disclosure">{session.digestDisclosure(mode, mode === 'model' && endpointCheck.ok ? endpoint.trim() : undefined)}</p>
      {mode === 'server' && (
        <div className="field">
          <label htmlFor="digest-key">The digest service’s key (from your server’s operator)</label>
          <input id="digest-key" value={key} onChange={(e) => setKey(e.target.value)} autoComplete="off" spellCheck={false} />
        </div>
      )}
      {mode === 'model' && (
        <>
          <div className="field">
            <label htmlFor="digest-endpoint">Model endpoint (OpenAI-compatible)</label>
            <input id="digest-endpoint" type="url" value={endpoint} onChange={(e) => setEndpoint(e.target.value)} autoComplete="off" spellCheck={false} aria-describedby="digest-endpoint-hint" />
            <p id="digest-endpoint-hint" className="hint">
              {endpointCheck.ok ? `Allowed by this server: ${origins.join(', ')}` : endpointCheck.reason}
            </p>
          </div>
          <div className="field">
            <label htmlFor="digest-model">Model name (empty: the default)</label>
            <input id="digest-model" value={modelName} onChange={(e) => setModelName(e.target.value)} autoComplete="off" spellCheck={false} />
          </div>
          <div className="field">
            <label htmlFor="digest-api-key">Your API key (kept in this page only, never stored)</label>
            <input id="digest-api-key" type="password" value={apiKey} onChange={(e) => setApiKey(e.target.value)} autoComplete="off" />
          </div>
        </>
      )}
      <div className="row">
        <button type="button" className="primary" onClick={run} disabled={busy || !ready}>
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
        {outcome.messageCount} messages summarised {outcome.on === 'device' ? 'on this device (nothing left it)' : outcome.on === 'model' ? 'by your model' : 'by the digest service'}
        {outcome.method === 'extractive' ? ', built-in summariser' : ', language model'}
        {outcome.excludedCount > 0 ? `; ${outcome.excludedCount} left out by their senders’ choice` : ''}.
      </p>
    </div>
  );
}
