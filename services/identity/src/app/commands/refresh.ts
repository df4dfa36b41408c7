// Refresh: the next access and refresh token of a session; a refresh token used twice ends it.
import { unauthenticated } from '@bil/runtime';
import { sessionDecider, sessionStream, type SessionEndReason } from '../../domain/session/session.js';
import type { IdentityDeps, Tokens } from '../context.js';
import { hashMatches, newRefreshToken, parseRefreshToken } from '../tokens.js';

export async function refresh(deps: IdentityDeps, input: { refreshToken: unknown }): Promise<Tokens> {
  const parsed = parseRefreshToken(input.refreshToken);
  if (!parsed) throw unauthenticated('invalid_refresh_token', 'the refresh token is not valid; sign in again');
  const now = deps.clock.now();
  const expiresAt = new Date(now.getTime() + deps.settings.refreshTtlSeconds * 1000);
  const next = newRefreshToken(parsed.sessionId, parsed.generation + 1);
  const { events, state } = await deps.store.handle(sessionDecider, sessionStream(parsed.sessionId), {
    type: 'RefreshSession',
    generation: parsed.generation,
    secretMatches: (stored) => hashMatches(parsed.secret, stored),
    newTokenHash: next.hash,
    expiresAt: expiresAt.toISOString(),
    now: now.toISOString(),
  });
  const ended = events.find((e) => e.type === 'SessionEnded');
  if (ended && (ended.data as { reason: SessionEndReason }).reason === 'refresh_token_reused') {
    await deps.revocations.revoke('session', [parsed.sessionId]);
    deps.logger.warn({ sessionId: parsed.sessionId }, 'refresh token reused; session ended');
    throw unauthenticated('refresh_token_reused', 'this refresh token was already used; the session was ended for safety');
  }
  if (ended) throw unauthenticated('session_expired', 'the session has expired; sign in again');
  if (state.status !== 'active') throw unauthenticated('invalid_refresh_token', 'the refresh token is not valid; sign in again');
  const access = await deps.signer.issue({ userId: state.userId, deviceId: state.deviceId, sessionId: state.sessionId }, now);
  return {
    accessToken: access.token,
    accessTokenExpiresAt: access.expiresAt.toISOString(),
    refreshToken: next.token,
    refreshTokenExpiresAt: expiresAt.toISOString(),
    sessionId: state.sessionId,
  };
}
