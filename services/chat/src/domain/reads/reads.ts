// The read marker of one member in one chat (stream `reads-<chat>-<user>`):
// the highest sequence number they have read. It only moves forward.
import { invalidArgument, type Decider } from '@bil/runtime/domain';

export type ReadsEvent = { type: 'MessagesRead'; data: { chatId: string; userId: string; lastReadSeq: number; occurredAt: string } };

/** `lastSeq` is the chat's last sequence number; the marker is clamped to it. */
export type ReadsCommand = { type: 'MarkRead'; chatId: string; userId: string; seq: number; lastSeq: number; now: string };

export interface ReadsState {
  lastReadSeq: number;
}

export const readsStream = (chatId: string, userId: string) => `reads-${chatId}-${userId}`;

export function decideReads(command: ReadsCommand, state: ReadsState): ReadsEvent[] {
  switch (command.type) {
    case 'MarkRead': {
      if (!Number.isSafeInteger(command.seq) || command.seq < 0) throw invalidArgument('invalid_seq', 'seq must be a non-negative integer', { field: 'seq' });
      const seq = Math.min(command.seq, command.lastSeq);
      if (seq <= state.lastReadSeq) return [];
      return [{ type: 'MessagesRead', data: { chatId: command.chatId, userId: command.userId, lastReadSeq: seq, occurredAt: command.now } }];
    }
    default: {
      const unknown: never = command.type;
      throw new Error(`unknown command ${String(unknown)}`);
    }
  }
}

export function evolveReads(state: ReadsState, event: ReadsEvent): ReadsState {
  return event.type === 'MessagesRead' ? { lastReadSeq: Math.max(state.lastReadSeq, event.data.lastReadSeq) } : state;
}

export const readsDecider: Decider<ReadsCommand, ReadsEvent, ReadsState> = {
  initialState: () => ({ lastReadSeq: 0 }),
  decide: decideReads,
  evolve: evolveReads,
};
