// The app's phases: no device here (register, or link this browser to an
// account), locked (the passphrase opens the sealed keys), signed out (the
// password opens a session for the device), and the messenger.
import { useEffect, useState, type FormEvent, type ReactNode } from 'react';
import { Messenger } from './Messenger.js';
import { Registration, Session } from './session.js';
import { forgetDevice, hasDevice, holdDevice } from './storage.js';
import { describeError } from './errors.js';
import { QrCode } from './QrCode.js';
import { BilApiError } from '@bil/sdk';

type Phase = { name: 'loading' } | { name: 'other-tab' } | { name: 'welcome' } | { name: 'lock' } | { name: 'signin'; session: Session } | { name: 'ready'; session: Session };

export function App(): ReactNode {
  const [phase, setPhase] = useState<Phase>({ name: 'loading' });

  // One tab per browser profile holds the device: two SDK clients on one key store would spend the same
  // single-use refresh token, and the server would end the session (refresh_token_reused).
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    let cancelled = false;
    holdDevice().then((held) => {
      if (cancelled) return;
      if (!held) {
        setPhase({ name: 'other-tab' });
        return;
      }
      hasDevice()
        .then((has) => setPhase(has ? { name: 'lock' } : { name: 'welcome' }))
        .catch(() => setPhase({ name: 'welcome' }));
    });
    return () => {
      cancelled = true;
    };
  }, [attempt]);

  const opened = (session: Session): void => setPhase(session.getState().account.signedIn ? { name: 'ready', session } : { name: 'signin', session });

  switch (phase.name) {
    case 'loading':
      return <Centered title="bil-message"><p role="status">Loading…</p></Centered>;
    case 'other-tab':
      return (
        <Centered title="bil-message is open in another tab">
          <p>This browser’s device can be used in one tab at a time. Use the other tab, or close it and try again here.</p>
          <button type="button" className="primary" onClick={() => setAttempt(attempt + 1)}>
            Try again
          </button>
        </Centered>
      );
    case 'welcome':
      return <Welcome onOpened={opened} />;
    case 'lock':
      return <Lock onOpened={opened} onForgotten={() => setPhase({ name: 'welcome' })} />;
    case 'signin':
      return (
        <SignIn
          session={phase.session}
          onSignedIn={() => setPhase({ name: 'ready', session: phase.session })}
          onLock={() => setPhase({ name: 'lock' })}
          onForgotten={() => setPhase({ name: 'welcome' })}
        />
      );
    case 'ready':
      return (
        <Messenger
          session={phase.session}
          onLock={() => {
            phase.session.lock();
            setPhase({ name: 'lock' });
          }}
          onLoggedOut={() => setPhase({ name: 'signin', session: phase.session })}
          onDeviceGone={() => setPhase({ name: 'welcome' })}
        />
      );
  }
}

export function Centered({ title, children }: { title: string; children: ReactNode }): ReactNode {
  return (
    <main className="centered">
      <div className="card">
        <h1>{title}</h1>
        {children}
      </div>
    </main>
  );
}

function Field(props: { id: string; label: string; type?: string; value: string; onChange: (v: string) => void; autoComplete?: string; hint?: string; minLength?: number; autoFocus?: boolean }): ReactNode {
  return (
    <div className="field">
      <label htmlFor={props.id}>{props.label}</label>
      <input
        id={props.id}
        type={props.type ?? 'text'}
        value={props.value}
        onChange={(e) => props.onChange(e.target.value)}
        autoComplete={props.autoComplete}
        required
        minLength={props.minLength}
        autoFocus={props.autoFocus}
        aria-describedby={props.hint ? `${props.id}-hint` : undefined}
      />
      {props.hint && (
        <p className="hint" id={`${props.id}-hint`}>
          {props.hint}
        </p>
      )}
    </div>
  );
}

function ErrorText({ error }: { error: string | null }): ReactNode {
  return error ? (
    <p className="error" role="alert">
      {error}
    </p>
  ) : null;
}

function useBusy(): [boolean, string | null, (fn: () => Promise<void>) => Promise<void>, (e: string | null) => void] {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (fn: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return [busy, error, run, setError];
}

const defaultDeviceName = (): string => {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom(e|ium)\//.test(ua) ? 'Chromium' : /Safari\//.test(ua) ? 'Safari' : 'browser';
  return `Web (${browser})`;
};

function Welcome({ onOpened }: { onOpened: (s: Session) => void }): ReactNode {
  const [mode, setMode] = useState<'register' | 'link'>('register');
  return (
    <Centered title="bil-message">
      <p className="lead">End-to-end encrypted messages. Your keys are made in this browser and kept encrypted under a passphrase only you know.</p>
      <div className="tabs" role="group" aria-label="Get started">
        <button type="button" aria-pressed={mode === 'register'} onClick={() => setMode('register')}>
          Create an account
        </button>
        <button type="button" aria-pressed={mode === 'link'} onClick={() => setMode('link')}>
          I already have an account
        </button>
      </div>
      {mode === 'register' ? <Register onOpened={onOpened} /> : <LinkThisBrowser onOpened={onOpened} />}
    </Centered>
  );
}

function Register({ onOpened }: { onOpened: (s: Session) => void }): ReactNode {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [passphrase, setPassphrase] = useState('');
  const [again, setAgain] = useState('');
  const [busy, error, run, setError] = useBusy();
  // Kept across attempts: an account created whose device step failed is finished by trying again.
  const [registration] = useState(() => new Registration());
  const [pending, setPending] = useState<string | null>(null);
  const submit = (e: FormEvent): void => {
    e.preventDefault();
    if (passphrase !== again) {
      setError('The two passphrases differ.');
      return;
    }
    void run(async () => {
      try {
        onOpened(await registration.register({ username: username.trim(), password, passphrase, deviceName: defaultDeviceName() }));
      } finally {
        setPending(registration.pending?.username ?? null);
      }
    });
  };
  return (
    <form onSubmit={submit} aria-labelledby="register-title">
      <h2 id="register-title">Create an account</h2>
      <Field id="reg-username" label="Username" value={username} onChange={setUsername} autoComplete="username" autoFocus />
      <Field id="reg-password" label="Password" type="password" value={password} onChange={setPassword} autoComplete="new-password" minLength={10} hint="Proves your account to the server (10 characters or more)." />
      <Field id="reg-passphrase" label="Passphrase for this browser" type="password" value={passphrase} onChange={setPassphrase} autoComplete="off" minLength={8} hint="Encrypts your keys in this browser. It never leaves it and can't be recovered." />
      <Field id="reg-passphrase2" label="Passphrase again" type="password" value={again} onChange={setAgain} autoComplete="off" />
      <ErrorText error={error} />
      {pending && !busy && (
        <p className="note" role="status">
          Your account “{pending}” was created, but this browser was not registered as its device yet. Try again with the same username, password and passphrase to finish.
        </p>
      )}
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Making your keys…' : pending ? 'Finish creating the account' : 'Create account'}
      </button>
    </form>
  );
}

function LinkThisBrowser({ onOpened }: { onOpened: (s: Session) => void }): ReactNode {
  const [passphrase, setPassphrase] = useState('');
  const [pending, setPending] = useState<Awaited<ReturnType<typeof Session.linkRequest>> | null>(null);
  const [approval, setApproval] = useState('');
  const [password, setPassword] = useState('');
  const [busy, error, run] = useBusy();
  if (!pending) {
    return (
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => setPending(await Session.linkRequest({ passphrase, deviceName: defaultDeviceName() })));
        }}
        aria-labelledby="link-title"
      >
        <h2 id="link-title">Add this browser to your account</h2>
        <p>This browser becomes a new device of your account. A device of yours that holds your identity key (the first one, or the <code>bil</code> command line) approves it.</p>
        <Field id="link-passphrase" label="Passphrase for this browser" type="password" value={passphrase} onChange={setPassphrase} autoComplete="off" minLength={8} hint="Encrypts this device's keys here." autoFocus />
        <ErrorText error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Making keys…' : 'Make a link request'}
        </button>
      </form>
    );
  }
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void run(async () => onOpened(await pending.finish(approval, password)));
      }}
      aria-labelledby="link-title"
    >
      <h2 id="link-title">Approve it on your other device</h2>
      <label htmlFor="link-request">1. Copy this link request to your other device (Settings, “Add a device”, or <code>bil device add</code>):</label>
      <textarea id="link-request" readOnly value={pending.request} rows={4} onFocus={(e) => e.currentTarget.select()} />
      <QrCode text={pending.request} label="QR code of the link request" size={240} />
      <div className="field">
        <label htmlFor="link-approval">2. Paste the approval it shows</label>
        <textarea id="link-approval" value={approval} onChange={(e) => setApproval(e.target.value)} rows={4} required />
      </div>
      <Field id="link-password" label="Your account password" type="password" value={password} onChange={setPassword} autoComplete="current-password" />
      <ErrorText error={error} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Adding…' : 'Add this browser'}
      </button>
    </form>
  );
}

function Lock({ onOpened, onForgotten }: { onOpened: (s: Session) => void; onForgotten: () => void }): ReactNode {
  const [passphrase, setPassphrase] = useState('');
  const [busy, error, run] = useBusy();
  return (
    <Centered title="Unlock bil-message">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            const session = await Session.unlock(passphrase);
            if (session) onOpened(session);
            else onForgotten();
          });
        }}
      >
        <p>Your keys are encrypted in this browser. Enter the passphrase you chose for it.</p>
        <Field id="unlock-passphrase" label="Passphrase" type="password" value={passphrase} onChange={setPassphrase} autoComplete="off" autoFocus />
        <ErrorText error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Unlocking…' : 'Unlock'}
        </button>
      </form>
      <details className="danger-zone">
        <summary>Forgot the passphrase?</summary>
        <p>It can't be recovered. You can remove this device from this browser and add the browser again from another device of yours (messages sent before that can't be read here).</p>
        <button
          type="button"
          className="danger"
          onClick={() => {
            if (window.confirm('Delete this device’s keys from this browser?')) void forgetDevice().then(onForgotten);
          }}
        >
          Remove this device from this browser
        </button>
      </details>
    </Centered>
  );
}

function SignIn({ session, onSignedIn, onLock, onForgotten }: { session: Session; onSignedIn: () => void; onLock: () => void; onForgotten: () => void }): ReactNode {
  const [password, setPassword] = useState('');
  const [busy, error, run] = useBusy();
  const [revoked, setRevoked] = useState(false);
  const { account } = session.getState();
  return (
    <Centered title="Sign in">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run(async () => {
            try {
              await session.signIn(password);
            } catch (err) {
              if (err instanceof BilApiError && err.code === 'device_revoked') setRevoked(true);
              throw err;
            }
            onSignedIn();
          });
        }}
      >
        <p>
          Signed out. This browser keeps the keys of <strong>{account.username}</strong>’s device “{account.deviceName}”.
        </p>
        <Field id="signin-password" label="Account password" type="password" value={password} onChange={setPassword} autoComplete="current-password" autoFocus />
        <ErrorText error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {revoked && (
        <div className="danger-zone">
          <p>This browser’s device was removed from your account. Its keys can’t be used any more; you can add the browser again as a new device.</p>
          <button type="button" className="danger" onClick={() => void forgetDevice().then(onForgotten)}>
            Remove it from this browser
          </button>
        </div>
      )}
      <button type="button" className="link" onClick={onLock}>
        Lock
      </button>
    </Centered>
  );
}
