// Sessions: started with their first tokens, ended by a condition, and every device of an account revoked with its sessions.
import { randomUUID } from 'node:crypto';
import type { Tx } from '@bil/runtime';
import { deviceDecider, deviceStream, type RevocationReason } from '../domain/device/device.js';
import { sessionDecider, sessionStream, type SessionEndReason } from '../domain/session/session.js';
import type { IdentityDeps, Tokens } from './context.js';
import { newRefreshToken } from './tokens.js';

export async function startSession(deps: IdentityDeps, userId: string, deviceId: string): Promise<Tokens> {
  const now = deps.clock.now();
  const sessionId = randomUUID();
  const refresh = newRefreshToken(sessionId, 1);
  const expiresAt = new Date(now.getTime() + deps.settings.refreshTtlSeconds * 1000);
  await deps.store.handle(sessionDecider, sessionStream(sessionId), {
    type: 'StartSession',
    sessionId,
    userId,
    deviceId,
    tokenHash: refresh.hash,
    expiresAt: expiresAt.toISOString(),
    now: now.toISOString(),
  });
  const access = await deps.signer.issue({ userId, deviceId, sessionId }, now);
  return {
    accessToken: access.token,
    accessTokenExpiresAt: access.expiresAt.toISOString(),
    refreshToken: refresh.token,
    refreshTokenExpiresAt: expiresAt.toISOString(),
    sessionId,
  };
}

export async function endSessions(deps: IdentityDeps, tx: Tx, where: string, params: unknown[], reason: SessionEndReason, now: string): Promise<string[]> {
  const rows = await tx.query<{ session_id: string }>(
    `SELECT session_id FROM identity.sessions WHERE status = 'active' AND ${where}`,
    params,
  );
  for (const r of rows) {
    await deps.store.handleIn(tx, sessionDecider, sessionStream(r.session_id), { type: 'EndSession', reason, now });
  }
  return rows.map((r) => r.session_id);
}

export async function revokeAllDevices(deps: IdentityDeps, tx: Tx, userId: string, reason: RevocationReason, now: string): Promise<string[]> {
  const rows = await tx.query<{ device_id: string }>(
    `SELECT device_id FROM identity.devices WHERE user_id = ? AND status = 'active'`,
    [userId],
  );
  for (const r of rows) {
    await deps.store.handleIn(tx, deviceDecider, deviceStream(r.device_id), { type: 'RevokeDevice', byUserId: userId, reason, now });
  }
  await endSessions(deps, tx, `user_id = ?`, [userId], reason === 'account_deleted' ? 'account_deleted' : 'device_revoked', now);
  return rows.map((r) => r.device_id);
}
