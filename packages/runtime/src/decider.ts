// The pure side of event sourcing: events and deciders. No I/O here (part of
// `@bil/runtime/domain`); the event store (event-store.ts) runs them.

export interface DomainEvent<T extends string = string, D extends object = object> {
  type: T;
  data: D;
}

/** The payload of the event of type `T` in the union `E`. */
export type EventData<E extends DomainEvent, T extends E['type']> = Extract<E, { type: T }>['data'];

/**
 * A pure aggregate: `decide` turns a command into events (or throws an
 * AppError), `evolve` folds an event into state. No I/O.
 *
 * `stateVersion` (default 1) stamps the compact state the event store keeps
 * per stream: bump it whenever the state's shape or `evolve` changes, and
 * every stored snapshot with another stamp is rebuilt by folding its stream's
 * events through `evolve` the first time it is loaded (EventStore.load).
 */
export interface Decider<C, E extends DomainEvent, S> {
  initialState(): S;
  decide(command: C, state: S): E[];
  evolve(state: S, event: E): S;
  stateVersion?: number;
}

/** The version of the state a decider writes (its `stateVersion`, 1 when unset). */
export function stateVersionOf(decider: { stateVersion?: number }): number {
  return decider.stateVersion ?? 1;
}

/** The state after `events`, folded from the initial state: what a snapshot must equal. */
export function replay<C, E extends DomainEvent, S>(decider: Decider<C, E, S>, events: Iterable<Pick<E, 'type' | 'data'>>): S {
  let state = decider.initialState();
  for (const e of events) state = decider.evolve(state, { type: e.type, data: e.data } as E);
  return state;
}
