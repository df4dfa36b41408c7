// Logout: ends the caller's session and revokes its tokens at once.
import { notFound } from '@bil/runtime';
import { sessionDecider, sessionStream } from '../../domain/session/session.js';
import type { IdentityDeps, Actor } from '../context.js';

export async function logout(deps: IdentityDeps, actor: Actor): Promise<void> {
  await deps.db.tx(async (tx) => {
    await deps.store.handleIn(tx, sessionDecider, sessionStream(actor.sessionId), ({ state }) => {
      if (state.status === 'none' || state.userId !== actor.userId) throw notFound('session_not_found', 'no such session');
      return { type: 'EndSession', reason: 'logout', now: deps.clock.now().toISOString() };
    });
  });
  await deps.revocations.revoke('session', [actor.sessionId]);
}
