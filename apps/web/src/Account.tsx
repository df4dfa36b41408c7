// The account panel (this account's devices: list, revoke, approve a new one)
// and a contact's safety number (compare, mark verified).
import { Suspense, lazy, useEffect, useState, type ReactNode } from 'react';
import { formatSafetyNumber, type OwnDevice } from '@bil/sdk';
import type { Session } from './session.js';
import { APPROVAL_PREFIX, REQUEST_PREFIX, decodeToken, encodeToken } from './link-token.js';
import { describeError } from './errors.js';
import { forgetDevice } from './storage.js';
import { QrCode } from './QrCode.js';
import { Notifications } from './Notifications.js';

/** The camera and the decoder load only when someone scans. */
const QrScanner = lazy(() => import('./QrScanner.js'));

export function AccountPanel({ session, onClose, onDeviceGone }: { session: Session; onClose: () => void; onDeviceGone: () => void }): ReactNode {
  const { account } = session.getState();
  const [devices, setDevices] = useState<OwnDevice[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [request, setRequest] = useState('');
  const [scanRequest, setScanRequest] = useState(false);
  const [approval, setApproval] = useState('');

  const load = (): void => {
    session.client.devices
      .list()
      .then(setDevices)
      .catch((err: unknown) => setError(describeError(err)));
  };
  useEffect(load, [session]);

  const revoke = (d: OwnDevice): void => {
    const prompt = d.current ? 'Revoke this browser? Its keys are deleted here and it signs out.' : `Revoke “${d.name}”? It signs out at once and gets no new messages.`;
    if (!window.confirm(prompt)) return;
    session.client.devices
      .revoke(d.deviceId)
      .then(async () => {
        if (d.current) {
          session.lock();
          await forgetDevice();
          onDeviceGone();
        } else load();
      })
      .catch((err: unknown) => setError(describeError(err)));
  };

  const approve = (): void => {
    setError(null);
    session.client.devices
      .approveLink(decodeToken(REQUEST_PREFIX, request))
      .then((a) => {
        setApproval(encodeToken(APPROVAL_PREFIX, a));
        load();
      })
      .catch((err: unknown) => setError(describeError(err)));
  };

  return (
    <main className="account" aria-labelledby="account-title">
      <div className="account-head">
        <h2 id="account-title">{account.username}</h2>
        <button type="button" onClick={onClose}>
          Back to chats
        </button>
      </div>
      <p>
        This browser is the device “{account.deviceName}”{account.holdsIdentityKey ? ' and holds your identity key (it can approve new devices).' : '.'}
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <section aria-labelledby="devices-title">
        <h3 id="devices-title">Devices</h3>
        {!devices ? (
          <p role="status">Loading devices…</p>
        ) : (
          <ul className="devices">
            {devices.map((d) => (
              <li key={d.deviceId}>
                <span>
                  <strong>{d.name}</strong>
                  {d.current ? ' (this browser)' : ''}
                  <br />
                  <small>
                    added {new Date(d.createdAt).toLocaleString()} · {d.certified && d.listed ? 'verified' : 'NOT verified by your identity key'}
                  </small>
                </span>
                <button type="button" className="danger" onClick={() => revoke(d)}>
                  Revoke
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
      <Notifications client={session.client} />
      {account.holdsIdentityKey && (
        <section aria-labelledby="add-device-title">
          <h3 id="add-device-title">Add a device</h3>
          <label htmlFor="approve-request">Paste the link request the new device shows</label>
          <textarea id="approve-request" value={request} onChange={(e) => setRequest(e.target.value)} rows={3} />
          <div className="row">
            <button type="button" onClick={approve} disabled={!request.trim()}>
              Approve
            </button>
            <button type="button" onClick={() => setScanRequest(!scanRequest)} aria-expanded={scanRequest}>
              Scan its code
            </button>
          </div>
          {scanRequest && (
            <Suspense fallback={<p role="status">Opening the camera…</p>}>
              <QrScanner
                label="Scan the new device's link request"
                onResult={(text) => {
                  setScanRequest(false);
                  setRequest(text);
                }}
                onClose={() => setScanRequest(false)}
              />
            </Suspense>
          )}
          {approval && (
            <>
              <label htmlFor="approval-out">Paste this approval on the new device</label>
              <textarea id="approval-out" readOnly value={approval} rows={4} onFocus={(e) => e.currentTarget.select()} />
            </>
          )}
        </section>
      )}
      <ChangePassword session={session} />
      <DeleteAccount session={session} onDeleted={onDeviceGone} />
    </main>
  );
}

function ChangePassword({ session }: { session: Session }): ReactNode {
  const [oldPassword, setOld] = useState('');
  const [newPassword, setNew] = useState('');
  const [note, setNote] = useState<{ ok: boolean; text: string } | null>(null);
  return (
    <section aria-labelledby="password-title">
      <h3 id="password-title">Change the password</h3>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          setNote(null);
          session.client
            .changePassword({ oldPassword, newPassword })
            .then(() => {
              setOld('');
              setNew('');
              setNote({ ok: true, text: 'Password changed. Your other devices were signed out.' });
            })
            .catch((err: unknown) => setNote({ ok: false, text: describeError(err) }));
        }}
      >
        <label htmlFor="old-password">Current password</label>
        <input id="old-password" type="password" value={oldPassword} onChange={(e) => setOld(e.target.value)} autoComplete="current-password" required />
        <label htmlFor="new-password">New password</label>
        <input id="new-password" type="password" value={newPassword} onChange={(e) => setNew(e.target.value)} autoComplete="new-password" minLength={10} required />
        <button type="submit">Change password</button>
      </form>
      {note && (
        <p className={note.ok ? 'ok' : 'error'} role={note.ok ? 'status' : 'alert'}>
          {note.text}
        </p>
      )}
    </section>
  );
}

function DeleteAccount({ session, onDeleted }: { session: Session; onDeleted: () => void }): ReactNode {
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  return (
    <details className="danger-zone">
      <summary>Delete the account</summary>
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          if (!window.confirm('Delete your account for good? Your chats and devices go with it.')) return;
          setError(null);
          session.client
            .deleteAccount({ password })
            .then(async () => {
              session.lock();
              await forgetDevice();
              onDeleted();
            })
            .catch((err: unknown) => setError(describeError(err)));
        }}
      >
        <p>Deletes the account, its devices and its keys here. Contacts see the account closed (its signed device list is closed).</p>
        <label htmlFor="delete-password">Password</label>
        <input id="delete-password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} autoComplete="current-password" required />
        <button type="submit" className="danger">
          Delete my account
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </details>
  );
}

export function SafetyNumber({ session, userId }: { session: Session; userId: string }): ReactNode {
  const [digits, setDigits] = useState<string | null>(null);
  const [verified, setVerified] = useState(false);
  const [typed, setTyped] = useState('');
  const [note, setNote] = useState<string | null>(null);
  const [scan, setScan] = useState(false);
  const verify = (theirs: string): void => {
    session.client.contacts
      .verifySafetyNumber(userId, theirs)
      .then((ok) => {
        setVerified(ok);
        setNote(ok ? null : 'That is not the same number: do not trust this chat until you find out why.');
      })
      .catch((err: unknown) => setNote(describeError(err)));
  };
  useEffect(() => {
    (async () => {
      await session.client.contacts.devices(userId);
      setDigits(formatSafetyNumber(await session.client.contacts.safetyNumber(userId)));
      setVerified((await session.client.contacts.pinned(userId))?.verified ?? false);
    })().catch((err: unknown) => setNote(describeError(err)));
  }, [session, userId]);
  return (
    <section className="safety" aria-labelledby="safety-title">
      <h3 id="safety-title">Safety number with {session.name(userId)}</h3>
      <p>Compare it with theirs in person or on a call. If it matches, nobody is in the middle.</p>
      {digits ? (
        <div className="safety-number">
          <p className="digits">{digits}</p>
          <QrCode text={digits.replace(/\s/g, '')} label={`QR code of the safety number with ${session.name(userId)}`} size={160} />
        </div>
      ) : (
        <p role="status">Loading…</p>
      )}
      <p>{verified ? 'Verified.' : 'Not verified yet.'}</p>
      {!verified && digits && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            verify(typed);
          }}
        >
          <label htmlFor="safety-typed">Their number, as they read it out</label>
          <input id="safety-typed" value={typed} onChange={(e) => setTyped(e.target.value)} inputMode="numeric" autoComplete="off" />
          <button type="submit">Mark verified</button>
          <button type="button" onClick={() => setScan(!scan)} aria-expanded={scan}>
            Scan their code
          </button>
        </form>
      )}
      {scan && !verified && (
        <Suspense fallback={<p role="status">Opening the camera…</p>}>
          <QrScanner
            label={`Scan ${session.name(userId)}’s safety number`}
            onResult={(text) => {
              setScan(false);
              verify(text);
            }}
            onClose={() => setScan(false)}
          />
        </Suspense>
      )}
      {note && (
        <p className="error" role="alert">
          {note}
        </p>
      )}
    </section>
  );
}
