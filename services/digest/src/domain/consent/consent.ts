// A member's signed digest consent for one chat (stream
// `consent-<chat id>:<user id>`): the newest `bil.digest-consent.v1`
// statement the member sent ("leave my messages out of digests", or withdraw
// that). The API checks the statement (shape, chat, the actor's own device,
// its signature, membership) before it gets here; the decider keeps only a
// strictly higher version, so a replayed older statement can't undo a newer
// one. The same statement again is an idempotent repeat (no event).
import { failedPrecondition, notFound, type Decider } from '@bil/runtime/domain';

export interface ConsentStatement {
  chatId: string;
  userId: string;
  /** The device that signed it. */
  deviceId: string;
  include: boolean;
  version: number;
  /** The SignedDigestConsent exactly as received, JSON. */
  consent: string;
}

export type ConsentEvent = { type: 'DigestConsentChanged'; data: ConsentStatement & { occurredAt: string } };

export type ConsentCommand = { type: 'SetConsent'; statement: ConsentStatement; isMember: boolean; now: string };

export interface ConsentState {
  /** The newest statement stored, if any. */
  current?: ConsentStatement;
}

export const consentStream = (chatId: string, userId: string) => `consent-${chatId}:${userId}`;

export function decideConsent(command: ConsentCommand, state: ConsentState): ConsentEvent[] {
  const { statement, isMember, now } = command;
  if (!isMember) throw notFound('chat_not_found', 'no such chat');
  const current = state.current;
  if (current) {
    if (current.version === statement.version && current.consent === statement.consent) return [];
    if (statement.version <= current.version) {
      throw failedPrecondition('consent_stale', 'a statement with this or a higher version is already stored; sign a new one with a higher version', {
        stored_version: current.version,
      });
    }
  }
  return [{ type: 'DigestConsentChanged', data: { ...statement, occurredAt: now } }];
}

export function evolveConsent(state: ConsentState, event: ConsentEvent): ConsentState {
  switch (event.type) {
    case 'DigestConsentChanged': {
      const { occurredAt: _at, ...statement } = event.data;
      return { current: statement };
    }
    default: {
      const unknown: never = event.type;
      return unknown;
    }
  }
}

export const consentDecider: Decider<ConsentCommand, ConsentEvent, ConsentState> = {
  initialState: () => ({}),
  decide: decideConsent,
  evolve: evolveConsent,
};
