// The session aggregate (stream `session-<id>`): one sign-in of one device,
// with a rotating refresh token. Each refresh token carries the generation it
// was issued at; presenting an older generation means a copy was used after
// rotation (stolen or replayed), so the whole session ends (RFC 9700 §4.14.2).
// The secret is checked first, against the hash issued for the presented
// generation: a token that was never issued (a forged `<sid>.<gen-1>.<junk>`)
// is refused without any state change, so knowing a session id is not enough
// to end someone else's session.
import { unauthenticated, type Decider } from '@bil/runtime/domain';

export type SessionEndReason = 'logout' | 'refresh_token_reused' | 'device_revoked' | 'password_changed' | 'account_deleted' | 'expired';

export type SessionEvent =
  | { type: 'SessionStarted'; data: { sessionId: string; userId: string; deviceId: string; tokenHash: string; expiresAt: string; occurredAt: string } }
  | { type: 'SessionRefreshed'; data: { sessionId: string; generation: number; tokenHash: string; expiresAt: string; occurredAt: string } }
  | { type: 'SessionEnded'; data: { sessionId: string; userId: string; deviceId: string; reason: SessionEndReason; occurredAt: string } };

export type SessionCommand =
  | { type: 'StartSession'; sessionId: string; userId: string; deviceId: string; tokenHash: string; expiresAt: string; now: string }
  | {
      type: 'RefreshSession';
      generation: number;
      /** True when the presented secret matched the stored hash (checked in constant time by the caller). */
      secretMatches: (storedHash: string) => boolean;
      newTokenHash: string;
      expiresAt: string;
      now: string;
    }
  | { type: 'EndSession'; reason: SessionEndReason; now: string };

interface SessionData {
  sessionId: string;
  userId: string;
  deviceId: string;
  generation: number;
  tokenHash: string;
  /** The hash issued at each generation (index generation - 1), to recognise a real, rotated-out token. */
  tokenHashes: string[];
  expiresAt: string;
  endReason: SessionEndReason | null;
}

export type SessionState = { status: 'none' } | ({ status: 'active' } & SessionData) | ({ status: 'ended' } & SessionData);

export const sessionStream = (sessionId: string) => `session-${sessionId}`;

const invalidRefresh = () => unauthenticated('invalid_refresh_token', 'the refresh token is not valid; sign in again');

export function decideSession(command: SessionCommand, state: SessionState): SessionEvent[] {
  switch (command.type) {
    case 'StartSession': {
      if (state.status !== 'none') throw invalidRefresh();
      const { type: _t, now, ...d } = command;
      return [{ type: 'SessionStarted', data: { ...d, occurredAt: now } }];
    }
    case 'RefreshSession': {
      if (state.status === 'none') throw invalidRefresh();
      // Verify before deciding anything: the presented secret must be the one
      // issued for the presented generation.
      const issued = state.tokenHashes[command.generation - 1];
      if (issued === undefined || !command.secretMatches(issued)) throw invalidRefresh();
      if (state.status === 'ended') {
        if (state.endReason === 'refresh_token_reused') {
          throw unauthenticated('refresh_token_reused', 'this refresh token was already used; the session was ended for safety');
        }
        if (state.endReason === 'account_deleted') throw unauthenticated('account_deleted', 'this account no longer exists');
        throw invalidRefresh();
      }
      if (Date.parse(state.expiresAt) <= Date.parse(command.now)) {
        return [end(state, 'expired', command.now)];
      }
      if (command.generation < state.generation) return [end(state, 'refresh_token_reused', command.now)];
      if (command.generation !== state.generation) throw invalidRefresh();
      return [
        {
          type: 'SessionRefreshed',
          data: {
            sessionId: state.sessionId,
            generation: state.generation + 1,
            tokenHash: command.newTokenHash,
            expiresAt: command.expiresAt,
            occurredAt: command.now,
          },
        },
      ];
    }
    case 'EndSession':
      if (state.status !== 'active') return [];
      return [end(state, command.reason, command.now)];
    default: {
      const unknown: never = command;
      throw new Error(`unknown command ${(unknown as { type: string }).type}`);
    }
  }
}

function end(s: Extract<SessionState, { status: 'active' }>, reason: SessionEndReason, now: string): SessionEvent {
  return { type: 'SessionEnded', data: { sessionId: s.sessionId, userId: s.userId, deviceId: s.deviceId, reason, occurredAt: now } };
}

function withHash(hashes: string[], generation: number, hash: string): string[] {
  const next = hashes.slice();
  next[generation - 1] = hash;
  return next;
}

export function evolveSession(state: SessionState, event: SessionEvent): SessionState {
  switch (event.type) {
    case 'SessionStarted':
      return {
        status: 'active',
        sessionId: event.data.sessionId,
        userId: event.data.userId,
        deviceId: event.data.deviceId,
        generation: 1,
        tokenHash: event.data.tokenHash,
        tokenHashes: [event.data.tokenHash],
        expiresAt: event.data.expiresAt,
        endReason: null,
      };
    case 'SessionRefreshed':
      return state.status === 'none'
        ? state
        : {
            ...state,
            generation: event.data.generation,
            tokenHash: event.data.tokenHash,
            tokenHashes: withHash(state.tokenHashes, event.data.generation, event.data.tokenHash),
            expiresAt: event.data.expiresAt,
          };
    case 'SessionEnded':
      return state.status === 'none' ? state : { ...state, status: 'ended', endReason: event.data.reason };
    default: {
      const unknown: never = event;
      return unknown;
    }
  }
}

export const sessionDecider: Decider<SessionCommand, SessionEvent, SessionState> = {
  initialState: () => ({ status: 'none' }),
  decide: decideSession,
  evolve: evolveSession,
};
