// expectSnapshotsEqualReplay: every compact state the event store keeps
// (`<schema>.streams`) equals the state folded from its stream's events with
// the decider's `evolve`, and carries the decider's state version. Run after a
// service's kind of activity: a state written by anything but the fold of
// its events (or a stale stamp) fails it. Independent of @bil/runtime (which
// tests with this kit): the fold is written again here, from the rows.
import { expect } from 'vitest';

interface ReplayDecider {
  initialState(): unknown;
  evolve(state: never, event: never): unknown;
  stateVersion?: number;
}

/** Anything with knex-style `query` (a @bil/runtime Database, a Tx). */
interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

interface SnapshotRow {
  stream_id: string;
  version: number;
  state: unknown;
  state_version: number;
}

interface EventRow {
  stream_id: string;
  stream_version: number;
  type: string;
  data: unknown;
}

/**
 * Checks every stored snapshot of `schema` against the fold of its events.
 * `deciders`: one decider for all streams, or deciders by stream id prefix
 * (`{ 'user-': userDecider, 'device-': deviceDecider }`): then a stream no
 * prefix matches fails the check. Returns how many snapshots were checked.
 */
export async function expectSnapshotsEqualReplay(
  db: Queryable,
  schema: string,
  deciders: ReplayDecider | Record<string, ReplayDecider>,
): Promise<number> {
  const byPrefix: Array<[string, ReplayDecider]> = isDecider(deciders) ? [['', deciders]] : Object.entries(deciders);
  const snapshots = await db.query<SnapshotRow>(`SELECT stream_id, version, state, state_version FROM "${schema}".streams ORDER BY stream_id`);
  const events = await db.query<EventRow>(
    `SELECT e.stream_id, e.stream_version, e.type, e.data FROM "${schema}".events e
     JOIN "${schema}".streams s ON s.stream_id = e.stream_id AND e.stream_version <= s.version
     ORDER BY e.stream_id, e.stream_version`,
  );
  const streams = new Map<string, EventRow[]>();
  for (const e of events) {
    const list = streams.get(e.stream_id) ?? [];
    list.push(e);
    streams.set(e.stream_id, list);
  }
  for (const s of snapshots) {
    const match = byPrefix.filter(([prefix]) => s.stream_id.startsWith(prefix)).sort((a, b) => b[0].length - a[0].length)[0];
    expect(match, `no decider for stream ${s.stream_id}`).toBeDefined();
    const decider = match![1];
    const history = streams.get(s.stream_id) ?? [];
    expect(
      history.map((e) => Number(e.stream_version)),
      `stream ${s.stream_id}: events 1..${s.version}`,
    ).toEqual(Array.from({ length: Number(s.version) }, (_, i) => i + 1));
    const evolve = decider.evolve as (state: unknown, event: unknown) => unknown;
    const replayed = history.reduce<unknown>((state, e) => evolve(state, { type: e.type, data: e.data }), decider.initialState());
    // As stored: through JSON (undefined fields dropped), compared key-order-free.
    expect(s.state, `stream ${s.stream_id}: snapshot equals the replay of its events`).toEqual(JSON.parse(JSON.stringify(replayed)));
    expect(Number(s.state_version), `stream ${s.stream_id}: state version`).toBe(decider.stateVersion ?? 1);
  }
  return snapshots.length;
}

function isDecider(x: ReplayDecider | Record<string, ReplayDecider>): x is ReplayDecider {
  return typeof (x as ReplayDecider).evolve === 'function' && typeof (x as ReplayDecider).initialState === 'function';
}
