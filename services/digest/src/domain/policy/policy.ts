// The digest policy of one chat (stream `policy-<chat id>`). Any member can
// switch digests off for the chat; digests are allowed only while no current
// member has them off. Each member controls only their own switch-off, so one
// member can't overrule another's; a member who leaves the chat takes theirs
// with them.
import { notFound, type Decider } from '@bil/runtime/domain';

export type PolicyEvent =
  /** `disabledByCount`: how many current members have digests off after this event. */
  | { type: 'DigestsSwitchedOff'; data: { chatId: string; userId: string; disabledByCount: number; occurredAt: string } }
  | { type: 'DigestsSwitchedOn'; data: { chatId: string; userId: string; reason: 'member' | 'left_chat'; disabledByCount: number; occurredAt: string } };

export type PolicyCommand =
  | { type: 'SetPolicy'; chatId: string; userId: string; enabled: boolean; isMember: boolean; now: string }
  /** From chat's membership events: a member left or the chat was deleted. */
  | { type: 'ForgetMember'; chatId: string; userId: string; now: string };

export interface PolicyState {
  /** Current members who switched digests off, in the order they did. */
  disabledBy: string[];
}

export const policyStream = (chatId: string) => `policy-${chatId}`;

export const digestsAllowed = (s: PolicyState) => s.disabledBy.length === 0;

export function decidePolicy(command: PolicyCommand, state: PolicyState): PolicyEvent[] {
  switch (command.type) {
    case 'SetPolicy': {
      const { chatId, userId, enabled, now } = command;
      if (!command.isMember) throw notFound('chat_not_found', 'no such chat');
      const off = state.disabledBy.includes(userId);
      const n = state.disabledBy.length;
      if (!enabled) return off ? [] : [{ type: 'DigestsSwitchedOff', data: { chatId, userId, disabledByCount: n + 1, occurredAt: now } }];
      return off ? [{ type: 'DigestsSwitchedOn', data: { chatId, userId, reason: 'member', disabledByCount: n - 1, occurredAt: now } }] : [];
    }
    case 'ForgetMember': {
      const { chatId, userId, now } = command;
      if (!state.disabledBy.includes(userId)) return [];
      return [{ type: 'DigestsSwitchedOn', data: { chatId, userId, reason: 'left_chat', disabledByCount: state.disabledBy.length - 1, occurredAt: now } }];
    }
    default: {
      const unknown: never = command;
      throw new Error(`unknown command ${String((unknown as { type: unknown }).type)}`);
    }
  }
}

export function evolvePolicy(state: PolicyState, event: PolicyEvent): PolicyState {
  switch (event.type) {
    case 'DigestsSwitchedOff':
      return state.disabledBy.includes(event.data.userId) ? state : { disabledBy: [...state.disabledBy, event.data.userId] };
    case 'DigestsSwitchedOn':
      return { disabledBy: state.disabledBy.filter((u) => u !== event.data.userId) };
    default: {
      const unknown: never = event;
      return unknown;
    }
  }
}

export const policyDecider: Decider<PolicyCommand, PolicyEvent, PolicyState> = {
  initialState: () => ({ disabledBy: [] }),
  decide: decidePolicy,
  evolve: evolvePolicy,
};
