// Groups: a new group from usernames (its title encrypted in the signed
// record), and the members panel (the verified record's members and roles;
// admins rename, add and remove, the owner gives admin rights, each change a
// new signed epoch; anyone leaves).
import { useCallback, useEffect, useRef, useState, useSyncExternalStore, type FormEvent, type ReactNode } from 'react';
import type { Session } from './session.js';
import { describeError } from './errors.js';

export function NewGroup({ session }: { session: Session }): ReactNode {
  const [title, setTitle] = useState('');
  const [members, setMembers] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const details = useRef<HTMLDetailsElement>(null);
  const create = (e: FormEvent): void => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    session
      .createGroup(
        title,
        members.split(/[\s,]+/).filter((u) => u !== ''),
      )
      .then(() => {
        setTitle('');
        setMembers('');
        if (details.current) details.current.open = false;
      })
      .catch((err: unknown) => setError(describeError(err)))
      .finally(() => setBusy(false));
  };
  return (
    <details className="new-group" ref={details}>
      <summary>New group</summary>
      <form onSubmit={create}>
        <label htmlFor="group-title">Group name (encrypted: the server never sees it)</label>
        <input id="group-title" value={title} onChange={(e) => setTitle(e.target.value)} required maxLength={100} autoComplete="off" />
        <label htmlFor="group-members">Members’ usernames, separated by commas</label>
        <input id="group-members" value={members} onChange={(e) => setMembers(e.target.value)} required autoComplete="off" />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Create group'}
        </button>
      </form>
    </details>
  );
}

/** A group's members as its verified record lists them; admins add and remove (each change is a new signed epoch). */
export function Members({ session, chatId, canManage, isOwner, title }: { session: Session; chatId: string; canManage: boolean; isOwner: boolean; title: string }): ReactNode {
  const [newTitle, setNewTitle] = useState(title);
  const state = useSyncExternalStore(session.subscribe, session.getState);
  const [members, setMembers] = useState<{ userId: string; role: string }[] | null>(null);
  const [mismatch, setMismatch] = useState<boolean>(false);
  const [username, setUsername] = useState('');
  const [error, setError] = useState<string | null>(null);
  const load = useCallback(() => {
    session
      .members(chatId)
      .then((r) => {
        setMembers(r.members);
        setMismatch(r.mismatch !== null && r.mismatch !== undefined);
      })
      .catch((err: unknown) => setError(describeError(err)));
  }, [session, chatId]);
  useEffect(load, [load]);
  const act = (fn: () => Promise<void>): void => {
    setError(null);
    fn()
      .then(load)
      .catch((err: unknown) => setError(describeError(err)));
  };
  return (
    <section className="safety" aria-labelledby="members-title">
      <h3 id="members-title">Members</h3>
      {mismatch && (
        <p className="error" role="alert">
          The server’s member list differs from the group’s signed record: only the signed members can read.
        </p>
      )}
      {!members ? (
        <p role="status">Loading…</p>
      ) : (
        <ul className="devices">
          {members.map((m) => (
            <li key={m.userId}>
              <span>
                {m.userId === state.account.userId ? 'You' : session.name(m.userId)} <small>({m.role})</small>
              </span>
              <span className="row">
                {isOwner && m.userId !== state.account.userId && m.role !== 'owner' && (
                  <button type="button" onClick={() => act(() => session.setRole(chatId, m.userId, m.role === 'admin' ? 'member' : 'admin'))}>
                    {m.role === 'admin' ? `Make ${session.name(m.userId)} a member` : `Make ${session.name(m.userId)} an admin`}
                  </button>
                )}
                {canManage && m.userId !== state.account.userId && m.role !== 'owner' && (
                  <button type="button" className="danger" onClick={() => act(() => session.removeMember(chatId, m.userId))}>
                    Remove {session.name(m.userId)}
                  </button>
                )}
              </span>
            </li>
          ))}
        </ul>
      )}
      {canManage && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            act(() => session.rename(chatId, newTitle));
          }}
        >
          <label htmlFor="rename-group" className="visually-hidden">
            Group name
          </label>
          <input id="rename-group" value={newTitle} onChange={(e) => setNewTitle(e.target.value)} required maxLength={100} autoComplete="off" />
          <button type="submit">Rename</button>
        </form>
      )}
      {canManage && (
        <form
          className="row"
          onSubmit={(e) => {
            e.preventDefault();
            act(async () => {
              await session.addMember(chatId, username);
              setUsername('');
            });
          }}
        >
          <label htmlFor="add-member" className="visually-hidden">
            Username to add
          </label>
          <input id="add-member" value={username} onChange={(e) => setUsername(e.target.value)} placeholder="username to add" autoComplete="off" required />
          <button type="submit">Add</button>
        </form>
      )}
      <button type="button" className="danger" onClick={() => act(() => session.leave(chatId))}>
        Leave the group
      </button>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}
