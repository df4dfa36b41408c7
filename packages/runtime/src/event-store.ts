// Append-only event store in the service's schema, with a compact state row
// per stream so that loading an aggregate never replays its history (unless
// the row was stored under another state version than the decider's: then
// load folds the stream's events once and stores the result), and
// projections that run inside the append transaction.
//
// Past ~400 lines on purpose: load, append, appendMany, appendOwned, reads and rebuild
// share the table layout, the state-version rule and the projection hooks;
// split, each part would re-state them.
import { randomUUID } from 'node:crypto';
import { ConcurrencyError } from './errors.js';
import { currentContext } from './context.js';
import type { Database, Sql, Tx } from './db.js';
import type { PipelinedTx } from './pipelined-tx.js';
import { replay, stateVersionOf, type Decider, type DomainEvent } from './decider.js';

export interface EventMetadata {
  correlationId?: string;
  causationId?: string;
  actorUserId?: string;
  actorDeviceId?: string;
}

export interface StoredEvent<E extends DomainEvent = DomainEvent> {
  /** Global position (bigserial; as a string, it can exceed 2^53). */
  position: string;
  /** The writing transaction's id (xid8, as a string). */
  txId: string;
  eventId: string;
  streamId: string;
  streamVersion: number;
  type: E['type'];
  data: E['data'];
  metadata: EventMetadata;
  occurredAt: string;
}

export interface Projection {
  name: string;
  /** Tables the projection owns; emptied on rebuild. */
  tables: string[];
  apply(tx: Sql, events: StoredEvent[]): Promise<void>;
  /**
   * The same projection of a run of events of `types`, as data-modifying CTEs
   * that read `ev(position, data)` (no parameters; CTE names unique across
   * the store's projections). When every projection of a store has one for
   * every event of an `appendOwned`, the insert and the projections are ONE
   * statement (one round trip on the hot path) instead of two. `apply` must
   * do the same for those events (rebuild and the other append paths use it).
   */
  inline?: { types: readonly string[]; ctes: string };
}

/** Builds a command from the stream's current state (may read and refuse); see EventStore.handleIn. */
export type CommandBuilder<C, S> = (stream: { state: S; version: number }) => C | Promise<C>;

/** What one handled command appended, and the stream's state and version after it. */
export interface Handled<E extends DomainEvent, S> {
  events: StoredEvent<E>[];
  state: S;
  version: number;
}

/** How many times a command is run again after a concurrency conflict, by default. */
export const DEFAULT_CONFLICT_RETRIES = 3;

/**
 * Runs `attempt` (a whole transaction) and runs it again when it fails with a
 * ConcurrencyError, at most `retries` more times; other errors pass through.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, retries = DEFAULT_CONFLICT_RETRIES): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof ConcurrencyError) || n >= retries) throw err;
    }
  }
}

export interface LoadedStream<S> {
  streamId: string;
  version: number;
  state: S;
  /** The decider's stateVersion: what append stamps the stored state with (1 when unset). */
  stateVersion?: number;
}

interface EventRow {
  position: string;
  tx_id: string;
  event_id: string;
  stream_id: string;
  stream_version: number;
  type: string;
  data: Record<string, unknown>;
  metadata: EventMetadata;
  occurred_at: Date | string;
}

export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    position: String(row.position),
    txId: String(row.tx_id),
    eventId: row.event_id,
    streamId: row.stream_id,
    streamVersion: Number(row.stream_version),
    type: row.type,
    data: row.data,
    metadata: row.metadata ?? {},
    occurredAt: new Date(row.occurred_at).toISOString(),
  };
}

const EVENT_COLUMNS = 'position, tx_id::text AS tx_id, event_id, stream_id, stream_version, type, data, metadata, occurred_at';

/** SQL of the event store's tables; a service's first migration runs it. */
export function eventStoreSchemaSql(schema: string): string[] {
  const s = `"${schema}"`;
  return [
    // Only when missing: CREATE SCHEMA needs CREATE on the database even with IF NOT EXISTS, which a role
    // limited to its own pre-created schema (docs/deploy.md, the digest role) does not have.
    `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = '${schema.replaceAll("'", "''")}') THEN CREATE SCHEMA ${s}; END IF; END $$`,
    `CREATE TABLE ${s}.events (
      position bigserial PRIMARY KEY,
      tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      event_id uuid NOT NULL UNIQUE,
      stream_id text NOT NULL,
      stream_version integer NOT NULL CHECK (stream_version > 0),
      type text NOT NULL,
      data jsonb NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
      occurred_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
    )`,
    `CREATE INDEX events_tx_position_idx ON ${s}.events (tx_id, position)`,
    `CREATE TABLE ${s}.streams (
      stream_id text PRIMARY KEY,
      version integer NOT NULL,
      state jsonb NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE TABLE ${s}.outbox_checkpoints (
      relay text PRIMARY KEY,
      tx_id xid8 NOT NULL,
      position bigint NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE TABLE ${s}.processed_events (
      consumer text NOT NULL,
      event_id uuid NOT NULL,
      processed_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (consumer, event_id)
    )`,
  ];
}

/**
 * The version stamp of each stored state (a service's migration runs it;
 * idempotent): rows from before it count as version 1, every decider's
 * version until one bumps its `stateVersion`.
 */
export function streamStateVersionSql(schema: string): string {
  return `ALTER TABLE "${schema}".streams ADD COLUMN IF NOT EXISTS state_version integer NOT NULL DEFAULT 1`;
}

/** The index DurableConsumer.trim uses (a service's migration runs it; idempotent). */
export function processedEventsTrimIndexSql(schema: string): string {
  return `CREATE INDEX IF NOT EXISTS processed_events_trim_idx ON "${schema}".processed_events (consumer, processed_at)`;
}

export class EventStore {
  private readonly t: (name: string) => string;
  private readonly committedListeners: Array<(events: readonly StoredEvent[]) => void> = [];

  constructor(
    readonly db: Database,
    readonly projections: Projection[] = [],
  ) {
    this.t = (name) => `"${db.schema}".${name}`;
  }

  /** Called after every commit that appended events, with them (the outbox relay listens: OutboxRelay.attach). */
  onCommitted(fn: (events: readonly StoredEvent[]) => void): void {
    this.committedListeners.push(fn);
  }

  /**
   * Loads a stream's compact state: one row, whatever the history length.
   * A state stored under another `stateVersion` than the decider's (written
   * before its shape or evolve changed) is rebuilt from the stream's events
   * through `evolve` and stored again: one read of the stream, once.
   */
  async load<C, E extends DomainEvent, S>(q: Sql, decider: Decider<C, E, S>, streamId: string): Promise<LoadedStream<S>> {
    const stateVersion = stateVersionOf(decider);
    const rows = await q.query<{ version: number; state: S; state_version: number }>(
      `SELECT version, state, state_version FROM ${this.t('streams')} WHERE stream_id = ?`,
      [streamId],
    );
    const row = rows[0];
    if (!row) return { streamId, version: 0, state: decider.initialState(), stateVersion };
    const version = Number(row.version);
    if (Number(row.state_version) === stateVersion) return { streamId, version, state: row.state, stateVersion };
    return { streamId, version, state: await this.upgrade(q, decider, streamId, version), stateVersion };
  }

  /**
   * load() for many streams in one statement (a primary-key probe each);
   * streams that don't exist are left out. A state stored under another
   * `stateVersion` is rebuilt as load() does.
   */
  async loadMany<C, E extends DomainEvent, S>(q: Sql, decider: Decider<C, E, S>, streamIds: readonly string[]): Promise<Map<string, LoadedStream<S>>> {
    const stateVersion = stateVersionOf(decider);
    const out = new Map<string, LoadedStream<S>>();
    if (streamIds.length === 0) return out;
    const rows = await q.query<{ stream_id: string; version: number; state: S; state_version: number }>(
      `SELECT s.stream_id, s.version, s.state, s.state_version FROM unnest(?::text[]) AS x(stream_id)
       CROSS JOIN LATERAL (SELECT * FROM ${this.t('streams')} s WHERE s.stream_id = x.stream_id OFFSET 0) s`,
      [textArray(streamIds)],
    );
    for (const row of rows) {
      const version = Number(row.version);
      const state = Number(row.state_version) === stateVersion ? row.state : await this.upgrade(q, decider, row.stream_id, version);
      out.set(row.stream_id, { streamId: row.stream_id, version, state, stateVersion });
    }
    return out;
  }

  /**
   * The state of a stream at `version` folded from its events, stored in
   * place of a snapshot of an older state version (guarded by the version:
   * if a writer moved the stream on meanwhile, its own state stands).
   */
  async upgrade<C, E extends DomainEvent, S>(q: Sql, decider: Decider<C, E, S>, streamId: string, version: number): Promise<S> {
    const events = (await this.readStream(q, streamId)).filter((e) => e.streamVersion <= version);
    const state = replay(decider, events as Array<Pick<E, 'type' | 'data'>>);
    await q.query(`UPDATE ${this.t('streams')} SET state = ?::jsonb, state_version = ? WHERE stream_id = ? AND version = ?`, [
      JSON.stringify(state),
      stateVersionOf(decider),
      streamId,
      version,
    ]);
    return state;
  }

  /**
   * Appends events to a stream that must be at `expectedVersion` (0: must not
   * exist), stores the new state and runs the projections, all in `tx`.
   * Throws ConcurrencyError if another writer got there first.
   */
  async append<E extends DomainEvent, S>(
    tx: Tx,
    stream: LoadedStream<S>,
    events: E[],
    newState: S,
    metadata: EventMetadata = {},
  ): Promise<StoredEvent<E>[]> {
    if (events.length === 0) return [];
    const nextVersion = stream.version + events.length;
    const ctx = currentContext();
    const meta: EventMetadata = { correlationId: ctx?.correlationId, causationId: ctx?.causationId, ...metadata };
    // The batch travels as one JSON document (knex would expand a JS array
    // parameter into a list).
    const batch = events.map((e, i) => ({
      event_id: randomUUID(),
      stream_id: stream.streamId,
      stream_version: stream.version + i + 1,
      type: e.type,
      data: e.data,
      metadata: meta,
    }));
    // One round trip: claim the stream row at the expected version (insert
    // for a new stream, guarded update otherwise) and insert the events only
    // if the claim succeeded. No rows back means another writer won.
    const claim =
      stream.version === 0
        ? `INSERT INTO ${this.t('streams')} (stream_id, version, state, state_version) VALUES (?, ?, ?::jsonb, ?)
           ON CONFLICT (stream_id) DO NOTHING RETURNING version`
        : `UPDATE ${this.t('streams')} SET version = ?, state = ?::jsonb, state_version = ?, updated_at = now()
           WHERE stream_id = ? AND version = ? RETURNING version`;
    const stateVersion = stream.stateVersion ?? 1;
    const claimParams =
      stream.version === 0
        ? [stream.streamId, nextVersion, JSON.stringify(newState), stateVersion]
        : [nextVersion, JSON.stringify(newState), stateVersion, stream.streamId, stream.version];
    const rows = await tx.query<EventRow>(
      `WITH claimed AS (${claim})
       INSERT INTO ${this.t('events')} (event_id, stream_id, stream_version, type, data, metadata)
       SELECT x.event_id, x.stream_id, x.stream_version, x.type, x.data, x.metadata
       FROM jsonb_to_recordset(?::jsonb) AS x(event_id uuid, stream_id text, stream_version integer, type text, data jsonb, metadata jsonb)
       WHERE EXISTS (SELECT 1 FROM claimed)
       ORDER BY x.stream_version
       RETURNING ${EVENT_COLUMNS}`,
      [...claimParams, JSON.stringify(batch)],
    );
    if (rows.length === 0) throw new ConcurrencyError(stream.streamId, stream.version);
    const stored = rows.map(toStoredEvent).sort((a, b) => a.streamVersion - b.streamVersion) as StoredEvent<E>[];
    for (const p of this.projections) await p.apply(tx, stored);
    stream.version = nextVersion;
    stream.state = newState;
    tx.afterCommit(() => this.committedListeners.forEach((fn) => fn(stored)));
    return stored;
  }

  /**
   * append() for several streams in one statement: each stream is claimed at
   * its expected version (0: must not exist) and its events are stored only
   * if the claim succeeded; the projections then run once over all of them
   * (group commit: many commands, one transaction and one fsync). A stream
   * may appear once. Returns, per item, its stored events, or undefined when
   * another writer moved that stream first (the other items still stand;
   * decide that one again on its current state). Claimed items' streams get
   * their new version and state, as append() does.
   */
  async appendMany<E extends DomainEvent, S>(
    tx: Tx,
    items: ReadonlyArray<{ stream: LoadedStream<S>; events: E[]; newState: S; metadata?: EventMetadata }>,
  ): Promise<Array<StoredEvent<E>[] | undefined>> {
    const ids = new Set(items.map((i) => i.stream.streamId));
    if (ids.size !== items.length) throw new Error('appendMany: a stream appears more than once');
    const live = items.filter((i) => i.events.length > 0);
    if (live.length === 0) return items.map(() => []);
    const ctx = currentContext();
    const claims = live.map(({ stream, events, newState }) => ({
      stream_id: stream.streamId,
      expected: stream.version,
      version: stream.version + events.length,
      state: newState,
      state_version: stream.stateVersion ?? 1,
    }));
    const batch = live.flatMap(({ stream, events, metadata }) =>
      events.map((e, i) => ({
        event_id: randomUUID(),
        stream_id: stream.streamId,
        stream_version: stream.version + i + 1,
        type: e.type,
        data: e.data,
        metadata: { correlationId: ctx?.correlationId, causationId: ctx?.causationId, ...metadata },
      })),
    );
    const rows = await tx.query<EventRow>(
      `WITH claims AS (
         SELECT * FROM jsonb_to_recordset(?::jsonb) AS c(stream_id text, expected integer, version integer, state jsonb, state_version integer)
       ), updated AS (
         UPDATE ${this.t('streams')} s SET version = c.version, state = c.state, state_version = c.state_version, updated_at = now()
         FROM claims c WHERE c.expected > 0 AND s.stream_id = c.stream_id AND s.version = c.expected
         RETURNING s.stream_id
       ), created AS (
         INSERT INTO ${this.t('streams')} (stream_id, version, state, state_version)
         SELECT stream_id, version, state, state_version FROM claims WHERE expected = 0
         ON CONFLICT (stream_id) DO NOTHING RETURNING stream_id
       )
       INSERT INTO ${this.t('events')} (event_id, stream_id, stream_version, type, data, metadata)
       SELECT x.event_id, x.stream_id, x.stream_version, x.type, x.data, x.metadata
       FROM ROWS FROM (jsonb_to_recordset(?::jsonb) AS (event_id uuid, stream_id text, stream_version integer, type text, data jsonb, metadata jsonb))
            WITH ORDINALITY AS x(event_id, stream_id, stream_version, type, data, metadata, n)
       WHERE x.stream_id IN (SELECT stream_id FROM updated UNION ALL SELECT stream_id FROM created)
       ORDER BY x.n
       RETURNING ${EVENT_COLUMNS}`,
      [JSON.stringify(claims), JSON.stringify(batch)],
    );
    const stored = rows.map(toStoredEvent).sort((a, b) => Number(BigInt(a.position) - BigInt(b.position))) as StoredEvent<E>[];
    const byStream = new Map<string, StoredEvent<E>[]>();
    for (const e of stored) byStream.set(e.streamId, [...(byStream.get(e.streamId) ?? []), e]);
    if (stored.length > 0) {
      for (const p of this.projections) await p.apply(tx, stored);
      tx.afterCommit(() => this.committedListeners.forEach((fn) => fn(stored)));
    }
    return items.map(({ stream, events, newState }) => {
      if (events.length === 0) return [];
      const mine = byStream.get(stream.streamId);
      if (!mine) return undefined;
      stream.version += events.length;
      stream.state = newState;
      return mine.sort((a, b) => a.streamVersion - b.streamVersion);
    });
  }

  /**
   * Appends events to streams whose versions the caller already owns: it
   * decided them under its own lock (chat's message logs: version = the seq
   * taken under the chat's row lock), so no stream state row is claimed or
   * rewritten. The (stream_id, stream_version) key still refuses a version
   * taken twice. Events are stored in the given order, with metadata each;
   * projections run and committed listeners fire as for append().
   *
   * In a pipelined transaction (Database.pipelined) with `commit`, the
   * statement that stores them is the transaction's last and carries its
   * COMMIT when the projections are all inline (one statement); otherwise
   * the transaction commits after, as usual.
   */
  async appendOwned<E extends DomainEvent>(
    tx: Pick<Tx, 'query' | 'afterCommit'> | PipelinedTx,
    entries: ReadonlyArray<{ streamId: string; streamVersion: number; event: E; metadata?: EventMetadata }>,
    opts: { commit?: boolean } = {},
  ): Promise<StoredEvent<E>[]> {
    if (entries.length === 0) return [];
    const ctx = currentContext();
    const batch = entries.map((x) => ({
      event_id: randomUUID(),
      stream_id: x.streamId,
      stream_version: x.streamVersion,
      type: x.event.type,
      data: x.event.data,
      metadata: x.metadata ?? { correlationId: ctx?.correlationId, causationId: ctx?.causationId },
    }));
    const insert = `INSERT INTO ${this.t('events')} (event_id, stream_id, stream_version, type, data, metadata)
       SELECT x.event_id, x.stream_id, x.stream_version, x.type, x.data, x.metadata
       FROM ROWS FROM (jsonb_to_recordset(?::jsonb) AS (event_id uuid, stream_id text, stream_version integer, type text, data jsonb, metadata jsonb))
            WITH ORDINALITY AS x(event_id, stream_id, stream_version, type, data, metadata, n)
       ORDER BY x.n`;
    const inline = this.inlineCtes(batch);
    let stored: StoredEvent<E>[];
    if (inline !== undefined) {
      // One statement: the insert, then every projection from its RETURNING rows. Only what the
      // caller does not already hold comes back (not the envelopes it just sent).
      const run = opts.commit && 'queryAndCommit' in tx ? tx.queryAndCommit.bind(tx) : tx.query.bind(tx);
      const rows = await run<Pick<EventRow, 'position' | 'tx_id' | 'event_id' | 'occurred_at'>>(
        `WITH ins AS (${insert} RETURNING position, tx_id, event_id, data, occurred_at),
         ev AS (SELECT position, data FROM ins),
         ${inline}
         SELECT position, tx_id::text AS tx_id, event_id, occurred_at FROM ins`,
        [JSON.stringify(batch)],
      );
      const byId = new Map(rows.map((r) => [r.event_id, r]));
      stored = batch.map((b) => {
        const r = byId.get(b.event_id)!;
        return toStoredEvent({ ...b, data: b.data as EventRow['data'], position: r.position, tx_id: r.tx_id, occurred_at: r.occurred_at }) as StoredEvent<E>;
      });
    } else {
      const rows = await tx.query<EventRow>(`${insert} RETURNING ${EVENT_COLUMNS}`, [JSON.stringify(batch)]);
      stored = rows.map(toStoredEvent) as StoredEvent<E>[];
      for (const p of this.projections) await p.apply(tx, stored);
    }
    stored.sort((a, b) => Number(BigInt(a.position) - BigInt(b.position)));
    tx.afterCommit(() => this.committedListeners.forEach((fn) => fn(stored)));
    return stored;
  }

  /** The projections' inline CTEs for these events, or undefined when one projection has none for one of them. */
  private inlineCtes(events: ReadonlyArray<{ type: string }>): string | undefined {
    const ctes: string[] = [];
    for (const p of this.projections) {
      if (!p.inline || events.some((e) => !p.inline!.types.includes(e.type))) return undefined;
      ctes.push(p.inline.ctes);
    }
    return ctes.length > 0 ? ctes.join(',\n') : undefined;
  }

  /**
   * Load → decide → append for one stream inside the caller's transaction:
   * the one command-handling step every service uses (alone through
   * `handle`, or several in one transaction, after the caller's own locks
   * and checks). `command` is the command itself or a builder given the
   * loaded state and version (a command is a plain object, never a
   * function); the builder may read in `tx` and throw to refuse. Throws
   * ConcurrencyError if another writer appended first: retry the whole
   * transaction (`retryOnConflict`), decide is pure.
   */
  async handleIn<C, E extends DomainEvent, S>(
    tx: Tx,
    decider: Decider<C, E, S>,
    streamId: string,
    command: NoInfer<C | CommandBuilder<C, S>>,
    opts: { metadata?: EventMetadata } = {},
  ): Promise<Handled<E, S>> {
    const stream = await this.load(tx, decider, streamId);
    const cmd = typeof command === 'function' ? await (command as CommandBuilder<C, S>)({ state: stream.state, version: stream.version }) : command;
    const events = decider.decide(cmd, stream.state);
    const state = events.reduce(decider.evolve, stream.state);
    const stored = await this.append(tx, stream, events, state, opts.metadata);
    return { events: stored, state, version: stream.version };
  }

  /** `fn` in its own transaction, run again (up to `retries` times) when it fails on a concurrency conflict. */
  async transact<T>(fn: (tx: Tx) => Promise<T>, opts: { retries?: number } = {}): Promise<T> {
    return retryOnConflict(() => this.db.tx(fn), opts.retries);
  }

  /** handleIn in its own transaction, retried on a concurrency conflict. */
  async handle<C, E extends DomainEvent, S>(
    decider: Decider<C, E, S>,
    streamId: string,
    command: NoInfer<C | CommandBuilder<C, S>>,
    opts: { metadata?: EventMetadata; retries?: number } = {},
  ): Promise<Handled<E, S>> {
    return this.transact((tx) => this.handleIn(tx, decider, streamId, command, opts), opts);
  }

  async readStream(q: Sql, streamId: string, fromVersion = 1): Promise<StoredEvent[]> {
    const rows = await q.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM ${this.t('events')} WHERE stream_id = ? AND stream_version >= ? ORDER BY stream_version`,
      [streamId, fromVersion],
    );
    return rows.map(toStoredEvent);
  }

  /** Events in global position order, after `afterPosition`. */
  async readAll(q: Sql, afterPosition = '0', limit = 1000): Promise<StoredEvent[]> {
    const rows = await q.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM ${this.t('events')} WHERE position > ?::bigint ORDER BY position LIMIT ?`,
      [afterPosition, limit],
    );
    return rows.map(toStoredEvent);
  }

  /**
   * Rebuilds every projection from the events, in one transaction: readers
   * see the old read models until it commits.
   */
  async rebuildProjections(batchSize = 1000): Promise<number> {
    return this.db.tx(async (tx) => {
      const tables = this.projections.flatMap((p) => p.tables.map((name) => this.t(name)));
      if (tables.length > 0) await tx.query(`TRUNCATE ${tables.join(', ')}`);
      let after = '0';
      let count = 0;
      for (;;) {
        const batch = await this.readAll(tx, after, batchSize);
        if (batch.length === 0) break;
        for (const p of this.projections) await p.apply(tx, batch);
        after = batch[batch.length - 1]!.position;
        count += batch.length;
      }
      return count;
    });
  }
}

/** A PostgreSQL text[] literal: one parameter whatever the length (knex would expand a JS array into a list). */
function textArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`).join(',')}}`;
}
