// given/when/then for pure deciders (emmett style):
//   spec.given(userRegistered).when(changePassword).then([passwordChanged]);
//   spec.given().when(deleteUser).thenThrows('user_not_found');
import { expect } from 'vitest';

interface DeciderLike<C, E, S> {
  initialState(): S;
  decide(command: C, state: S): E[];
  evolve(state: S, event: E): S;
}

export function deciderSpec<C, E, S>(decider: DeciderLike<C, E, S>) {
  return {
    given(...events: E[]) {
      const state = events.reduce(decider.evolve, decider.initialState());
      return {
        when(command: C) {
          const run = () => decider.decide(command, state);
          return {
            then(expected: E[]) {
              expect(run()).toEqual(expected);
            },
            /** Asserts an AppError with this stable code is thrown. */
            thenThrows(code: string) {
              let thrown: unknown;
              try {
                run();
              } catch (err) {
                thrown = err;
              }
              expect(thrown, `expected ${code} to be thrown`).toBeDefined();
              expect((thrown as { code?: string }).code).toBe(code);
            },
            /** The state after the events the command produced. */
            thenState() {
              return run().reduce(decider.evolve, state);
            },
          };
        },
      };
    },
  };
}
