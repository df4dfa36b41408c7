// Transactional outbox relay: publishes committed events to JetStream in
// commit order, with Nats-Msg-Id = event id so JetStream drops the duplicates
// a crash between publish and checkpoint can cause.
//
// Size: past 400 lines because the lease (session lock, in-memory
// checkpoint), the loop, drain, the reads that come with commits and the
// windowed publish are one state machine over one checkpoint; split, each
// part would need the others' invariants (what may move the checkpoint, in
// which turn).
//
// A bigserial position is taken at insert time but transactions commit in
// another order, so "position > checkpoint" would skip a row that commits
// late. Each event row stores its transaction id (pg_current_xact_id()); the
// relay reads only rows whose transaction is older than every transaction
// still running (pg_snapshot_xmin of its snapshot), ordered by (tx id,
// position). A transaction below xmin has committed or aborted, so nothing
// can later appear behind the checkpoint.
//
// One relay per service publishes at a time: it holds a session advisory lock
// on a connection of its own (Database.session), so a replica that stops or
// loses its connection releases it and a standby takes over. While it holds
// the lock the checkpoint lives in memory (each batch is one statement, no
// transaction) and is written back at most every CHECKPOINT_WRITE_MS, when
// idle, and on stop: after a crash the relay resends at most that much, which
// JetStream drops by Nats-Msg-Id (its duplicate window is 10 minutes).
//
// While it holds the lock, a pipelined transaction of this process (chat's
// send path) carries the relay's batch read after its COMMIT, in the same
// round trip (Database.setCommitTail): the rows come back with the commit
// and are published in the relay's turn, without the read of its own that a
// wake-up would cost (one round trip fewer per send batch, and the publish
// starts that much earlier). The read is the same statement, from where
// earlier commits' reads got to (lease.read, else the checkpoint); rows the
// checkpoint has passed by the relay's turn are skipped, and rows that would
// leave a gap (an earlier read given up) are dropped and read again. None is
// sent while the relay's own batch is queued or running. Only a commit whose
// events all came back this way leaves the relay asleep; otherwise (held
// back by an older transaction, a full batch, a lease lost meanwhile) it is
// woken as before.
import type { Subscription } from '@nats-io/transport-node';
import type { Database, Session } from './db.js';
import type { CommitTail } from './pipelined-tx.js';
import { toStoredEvent, type EventStore, type StoredEvent } from './event-store.js';
import type { Logger } from './logger.js';
import {
  CORRELATION_ID_HEADER,
  EVENT_ID_HEADER,
  EVENT_TYPE_HEADER,
  STREAM_ID_HEADER,
  STREAM_VERSION_HEADER,
  newHeaders,
  type Nats,
} from './nats.js';
import type { Metrics } from './metrics.js';
import { OutageLog } from './outage.js';

/** How many publishes are in flight at once. */
const PUBLISH_WINDOW = 256;
/** Most local events remembered as owed (past it, the poll finds the rest). */
const MAX_OWED = 10_000;
/** The longest the stored checkpoint lags the published one while events keep coming. */
const CHECKPOINT_WRITE_MS = 250;
/** The batch read's statement name on the relay's session (a commit tail's is named from its text, pipelined-tx.ts). */
const BATCH_STATEMENT = 'bil_outbox_batch';

/**
 * The relay's read: the next committed events after the checkpoint, in
 * commit order. The checkpoint comes in as parameters (the relay keeps it in
 * memory while it holds the lock), so `(tx_id, position) > checkpoint AND
 * tx_id < xmin` is an index range on events_tx_position_idx whose cost does
 * not grow with history; joined in as a CTE it was a filter over every event
 * below xmin (issue #18: 11.5 ms per batch at 7.9k events, up to 96 ms at
 * 68.6k). Parameters ($n for the relay's session, `?` for a commit tail):
 * checkpoint tx id, checkpoint position, limit.
 */
export function outboxBatchSql(schema: string, placeholder: (n: number) => string = (n) => `$${n}`): string {
  const s = `"${schema}"`;
  return `SELECT e.position, e.tx_id::text AS tx_id, e.event_id, e.stream_id, e.stream_version, e.type, e.data, e.metadata, e.occurred_at
       FROM ${s}.events e
       WHERE (e.tx_id, e.position) > (${placeholder(1)}::xid8, ${placeholder(2)}::bigint)
         AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY e.tx_id, e.position
       LIMIT ${placeholder(3)}`;
}

export interface OutboundMessage {
  subject: string;
  /** The integration event payload (secrets already stripped): a generated proto type, encoded as JSON. */
  payload: object;
}

export interface OutboxRelayOptions {
  db: Database;
  nats: Nats;
  logger: Logger;
  /** Checkpoint name; one relay per service. */
  name?: string;
  /** Maps a stored event to what is published, or null to keep it private. */
  toMessage: (event: StoredEvent) => OutboundMessage | null;
  batchSize?: number;
  pollIntervalMs?: number;
  metrics?: Metrics;
  /**
   * How long one publish waits for JetStream's ack (default 2000 ms). Short on
   * purpose: a publish lost while NATS was away is resent (deduplicated by
   * Nats-Msg-Id) instead of holding live delivery back for the client's 10 s.
   */
  publishTimeoutMs?: number;
  /** Longest pause between failed batches (default 1000 ms; the first retries come after 100, 200, 400 ms). */
  maxRetryDelayMs?: number;
  /** Test hook: called after each publish (to simulate a crash mid-batch). */
  afterPublish?: (event: StoredEvent) => void | Promise<void>;
}

/** The relay's connection, whether it holds the lock, and its checkpoint while it does. */
interface Lease {
  session: Session;
  locked: boolean;
  txId: string;
  position: string;
  /** Published past what is stored. */
  dirty: boolean;
  writtenAt: number;
  /** A statement failed: the connection is closed and a new one opened. */
  failed?: boolean;
  /** How far commits' reads have brought rows to publish (past the checkpoint while they are published). */
  read?: { txId: string; position: string };
}

export class OutboxRelay {
  private running = false;
  private lease?: Lease;
  /** The batch in progress: batches (the loop's, drain's) run one at a time. */
  private current: Promise<unknown> = Promise.resolve();
  private loop?: Promise<void>;
  private wake?: () => void;
  private kicked = false;
  /** Events committed here and not yet published: while this relay holds the lock it looks again soon, not at the next poll. */
  private readonly owed = new Set<string>();
  private kickSub?: Subscription;
  /** Events that came back with their commit (commit tails): their commit wakes nobody. */
  private readonly returned = new Set<string>();
  /** The relay's own batches queued or running: while there is one, commits carry no read. */
  private ownBatches = 0;
  private readonly tailSql: string;
  private readonly tail = () => this.commitTail();
  private readonly name: string;
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly outage: OutageLog;
  /** Resolves when the NATS connection comes back (then replaced): a batch waiting on acks resends at once. */
  private reconnected!: Promise<void>;
  private signalReconnect!: () => void;

  constructor(private readonly opts: OutboxRelayOptions) {
    this.name = opts.name ?? 'outbox';
    this.batchSize = opts.batchSize ?? 1000;
    this.pollMs = opts.pollIntervalMs ?? 1000;
    this.outage = new OutageLog(opts.logger, `outbox relay ${this.name}`);
    this.tailSql = outboxBatchSql(opts.db.schema, () => '?');
    this.armReconnect();
  }

  private armReconnect(): void {
    this.reconnected = new Promise((resolve) => (this.signalReconnect = resolve));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // Another replica's commit (its relay does not hold the lock) wakes this one at once.
    this.kickSub = this.opts.nats.nc.subscribe(this.kickSubject(), { callback: () => this.wakeUp() });
    this.opts.db.setCommitTail(this.tail);
    this.loop = this.run();
    void this.watchNats();
  }

  /** Core NATS, not stored: a lost kick only waits for the next poll. */
  private kickSubject(): string {
    return `${this.opts.nats.prefix}outbox.${this.opts.db.schema}.${this.name}.kick`;
  }

  private wakeUp(): void {
    this.kicked = true;
    this.wake?.();
  }

  /** On every NATS reconnect: abandon the acks still awaited (resent, deduplicated) and retry now, not after a backoff. */
  private async watchNats(): Promise<void> {
    const nc = this.opts.nats.nc;
    try {
      for await (const s of nc.status()) {
        if (!this.running) break;
        if (s.type === 'reconnect') {
          const signal = this.signalReconnect;
          this.armReconnect();
          this.kicked = true;
          signal();
          this.wake?.();
        }
      }
    } catch {
      // The connection closed: nothing left to watch.
    }
  }

  /**
   * Follows a store's commits: counts the appended events
   * (`bil_events_appended_total`) and, when a commit has something to
   * publish, wakes the relay, or, when another replica's relay holds the
   * lock, that one (a kick on core NATS). A commit of private events only
   * (toMessage gives null for each) wakes nobody: the checkpoint passes them
   * with the next batch or poll, and nobody waits for them.
   */
  attach(store: EventStore): void {
    store.onCommitted((events) => {
      let publishes = false;
      let unread = false;
      for (const e of events) {
        this.opts.metrics?.eventsAppended.inc({ type: e.type });
        if (this.opts.toMessage(e) === null) continue;
        publishes = true;
        if (this.returned.has(e.eventId)) continue; // read with its commit, published in the relay's turn
        unread = true;
        if (this.owed.size < MAX_OWED) this.owed.add(e.eventId);
      }
      if (!publishes || !unread) return;
      if (!this.lease?.locked && this.running) this.opts.nats.nc.publish(this.kickSubject());
      this.kick();
    });
  }

  /** Wakes the relay now (called after a local commit). */
  kick(): void {
    this.wakeUp();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.opts.db.removeCommitTail(this.tail);
    this.kickSub?.unsubscribe();
    this.wake?.();
    await this.loop;
    await this.release();
  }

  /**
   * Publishes everything committed before the call and stores the checkpoint;
   * returns how many were published. An event committed before the call may
   * sit behind a transaction still running anywhere on the server (the relay
   * reads below the snapshot's xmin, so it never skips a late commit): drain
   * waits for it, at most `waitMs` (default 5 s). Nothing is waited for when
   * another relay holds the lock. A relay that was not started lets go of the
   * lock afterwards.
   */
  async drain(opts: { waitMs?: number } = {}): Promise<number> {
    const deadline = Date.now() + (opts.waitMs ?? 5000);
    const [top] = await this.opts.db.query<{ position: string }>(`SELECT coalesce(max(position), 0)::text AS position FROM "${this.opts.db.schema}".events`);
    let total = 0;
    try {
      for (;;) {
        const n = await this.publishBatch();
        total += n.published;
        if (n.read > 0) continue;
        if (Date.now() >= deadline || !(await this.behind(top!.position))) return total;
        await new Promise((r) => setTimeout(r, 5));
      }
    } finally {
      if (!this.running) await this.release();
    }
  }

  /** Whether events at or below `position` are still past the checkpoint (waiting for an older transaction). */
  private async behind(position: string): Promise<boolean> {
    const lease = this.lease;
    if (!lease?.locked) return false;
    try {
      const [r] = await this.sql<{ behind: boolean }>(
        lease,
        `SELECT EXISTS (SELECT 1 FROM "${this.opts.db.schema}".events e WHERE (e.tx_id, e.position) > ($1::xid8, $2::bigint) AND e.position <= $3::bigint) AS behind`,
        [lease.txId, lease.position, position],
      );
      return r?.behind ?? false;
    } catch {
      return false; // the connection is gone: the next batch starts over from the stored checkpoint
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    let owedDelay = 0;
    while (this.running) {
      try {
        this.kicked = false;
        const { read } = await this.publishBatch();
        failures = 0;
        this.outage.ok();
        if (read === this.batchSize) continue;
      } catch (err) {
        failures++;
        this.outage.failed(err, { code: errSummary(err).code });
      }
      if (!this.running) break;
      if (this.kicked) {
        // A commit happened while we were reading; its xid may still have
        // been running, so look again shortly.
        await this.sleep(5);
        continue;
      }
      if (failures === 0 && this.owed.size > 0 && this.lease?.locked) {
        // Events committed here are held back by an older transaction still running (anywhere on the
        // server: the read stops below xmin): look again soon, 5 ms doubling, not at the next poll.
        // Past a poll interval, what is still owed was published by another replica (it held the
        // lock then): forgotten.
        owedDelay = Math.max(5, owedDelay * 2);
        if (owedDelay < this.pollMs) {
          await this.sleep(owedDelay);
          continue;
        }
        this.owed.clear();
      }
      owedDelay = 0;
      await this.sleep(failures > 0 ? Math.min(this.opts.maxRetryDelayMs ?? 1000, 50 * 2 ** failures) : this.pollMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /**
   * The batch read a pipelined commit carries, while this relay holds the
   * lock and no batch of its own is queued or running (undefined otherwise:
   * the commit wakes it as before). It reads after what earlier commits'
   * reads already brought (`lease.read`), not after the published
   * checkpoint, so commits in quick succession do not read the same rows
   * again while those are still being published.
   */
  private commitTail(): CommitTail | undefined {
    const lease = this.lease;
    if (!this.running || !lease?.locked || lease.failed || this.ownBatches > 0) return undefined;
    const from = lease.read ?? { txId: lease.txId, position: lease.position };
    return { sql: this.tailSql, params: [from.txId, from.position, this.batchSize], deliver: (rows) => this.fromCommit(lease, from, rows) };
  }

  /**
   * Rows read after a commit, from checkpoint `from`: published in the
   * relay's turn (after the batch in progress), the ones it has passed since
   * skipped. Called before the commit's listeners, so they know which of
   * their events need no wake-up; when these rows cannot be used (the lease
   * was lost meanwhile, a publish failed) or may not be all (a full batch),
   * the relay is woken to read for itself.
   */
  private fromCommit(lease: Lease, from: { txId: string; position: string }, rows: Record<string, unknown>[] | undefined): void {
    // No rows: the read failed (or the transaction did); the commit's listeners wake the relay if there is anything.
    if (!rows) return;
    const events = (rows as unknown as Parameters<typeof toStoredEvent>[0][]).map(toStoredEvent);
    for (const e of events) this.returned.add(e.eventId);
    const last = events[events.length - 1];
    if (last && (!lease.read || after(last, lease.read))) lease.read = { txId: last.txId, position: last.position };
    const full = events.length >= this.batchSize;
    const publish = async () => {
      // Published in turn: what came before `from` must be published by now, else these rows would leave a gap.
      if (this.lease !== lease || !lease.locked || lease.failed || !this.running || after(from, lease)) return false;
      const fresh = events.filter((e) => after(e, lease));
      if (fresh.length > 0) {
        await this.publishEvents(lease, fresh);
        this.opts.metrics?.outboxBatches.inc({ read: 'commit' });
      }
      return true;
    };
    const next = this.current.then(publish, publish);
    this.current = next;
    next
      .then(
        (used) => {
          if (used && !full) return;
          lease.read = undefined; // read again from the checkpoint
          this.kick();
        },
        (err: unknown) => {
          this.outage.failed(err, { code: errSummary(err).code });
          lease.read = undefined;
          this.kick(); // the relay's own batch resends from the checkpoint
        },
      )
      .finally(() => {
        for (const e of events) this.returned.delete(e.eventId);
      });
  }

  /** One batch, after the one in progress; nothing when another relay holds the lock. */
  private publishBatch(): Promise<{ read: number; published: number }> {
    this.ownBatches++;
    const next = this.current.then(
      () => this.publishOnce(),
      () => this.publishOnce(),
    );
    this.current = next;
    return next.finally(() => this.ownBatches--);
  }

  private async publishOnce(): Promise<{ read: number; published: number }> {
    const lease = await this.hold();
    if (!lease) return { read: 0, published: 0 };
    try {
      const r = await this.publishLocked(lease);
      await this.writeCheckpoint(lease, r.read === 0 && Date.now() - lease.writtenAt >= CHECKPOINT_WRITE_MS);
      return r;
    } catch (err) {
      // A failed statement may mean the connection is gone: start over from the stored checkpoint
      // (what is resent is dropped by Nats-Msg-Id). A failed publish keeps the lease and resends the batch.
      if (lease.failed) await this.dropLease();
      throw err;
    }
  }

  /**
   * A statement on the lease's connection (with a name: prepared once on it, so the batch read
   * that follows every commit is not planned each time); a failure marks the lease for dropping.
   */
  private async sql<T>(lease: Lease, text: string, params: readonly unknown[], name?: string): Promise<T[]> {
    try {
      return await (name ? lease.session.prepared<T>(name, text, params) : lease.session.query<T>(text, params));
    } catch (err) {
      lease.failed = true;
      throw err;
    }
  }

  /** The lease when this relay holds the lock (taking it if free), else undefined. */
  private async hold(): Promise<Lease | undefined> {
    const lease = (this.lease ??= { session: await this.opts.db.session(), locked: false, txId: '0', position: '0', dirty: false, writtenAt: 0 });
    if (lease.locked) return lease;
    try {
      const [lock] = await this.sql<{ locked: boolean }>(lease, `SELECT pg_try_advisory_lock(hashtext($1)) AS locked`, [this.lockKey()]);
      if (!lock?.locked) return undefined;
      lease.locked = true;
      const [c] = await this.sql<{ tx_id: string; position: string }>(
        lease,
        `SELECT tx_id::text AS tx_id, position::text AS position FROM "${this.opts.db.schema}".outbox_checkpoints WHERE relay = $1`,
        [this.name],
      );
      Object.assign(lease, { txId: c?.tx_id ?? '0', position: c?.position ?? '0', dirty: false, writtenAt: Date.now() });
      return lease;
    } catch (err) {
      await this.dropLease();
      throw err;
    }
  }

  private lockKey(): string {
    return `bil-outbox:${this.opts.db.schema}:${this.name}`;
  }

  /** Stores the in-memory checkpoint when it moved and `now` or CHECKPOINT_WRITE_MS have passed since the last write. */
  private async writeCheckpoint(lease: Lease, now: boolean): Promise<void> {
    if (!lease.dirty || (!now && Date.now() - lease.writtenAt < CHECKPOINT_WRITE_MS)) return;
    await this.sql(
      lease,
      `INSERT INTO "${this.opts.db.schema}".outbox_checkpoints (relay, tx_id, position) VALUES ($1, $2::xid8, $3)
       ON CONFLICT (relay) DO UPDATE SET tx_id = excluded.tx_id, position = excluded.position, updated_at = now()`,
      [this.name, lease.txId, lease.position],
    );
    lease.dirty = false;
    lease.writtenAt = Date.now();
  }

  /** Stores the checkpoint, lets go of the lock and closes the connection. */
  private async release(): Promise<void> {
    await this.current.catch(() => undefined);
    const lease = this.lease;
    if (!lease) return;
    try {
      if (lease.locked) {
        await this.writeCheckpoint(lease, true);
        await lease.session.query(`SELECT pg_advisory_unlock(hashtext($1))`, [this.lockKey()]);
      }
    } catch (err) {
      this.opts.logger.warn({ err: errSummary(err) }, `outbox relay ${this.name}: could not store its checkpoint on release (resent after restart, deduplicated)`);
    } finally {
      await this.dropLease();
    }
  }

  /** Closes the connection (PostgreSQL releases the lock with it). */
  private async dropLease(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    this.owed.clear(); // whoever takes the lock next publishes them
    await lease?.session.close();
  }

  private async publishLocked(lease: Lease): Promise<{ read: number; published: number }> {
    lease.read = undefined; // every commit's read queued before this batch has been published: the checkpoint is the truth
    const rows = await this.sql<Parameters<typeof toStoredEvent>[0]>(
      lease,
      outboxBatchSql(this.opts.db.schema),
      [lease.txId, lease.position, this.batchSize],
      BATCH_STATEMENT,
    );
    if (rows.length === 0) return { read: 0, published: 0 };
    const events = rows.map(toStoredEvent);
    const published = await this.publishEvents(lease, events);
    this.opts.metrics?.outboxBatches.inc({ read: 'relay' });
    return { read: events.length, published };
  }

  /** Publishes events in order and moves the in-memory checkpoint past the last; returns how many were published. */
  private async publishEvents(lease: Lease, events: StoredEvent[]): Promise<number> {
    const { nats } = this.opts;
    let published = 0;
    const timeout = this.opts.publishTimeoutMs ?? 2000;
    const reconnected = this.reconnected.then(() => {
      throw new Error('NATS reconnected while acks were awaited; resending');
    });
    reconnected.catch(() => undefined);
    // Publishes are pipelined in windows (one connection keeps their order);
    // acks are awaited in order. If one fails, the checkpoint stays put and the
    // batch is sent again: JetStream drops the copies by Nats-Msg-Id.
    for (let start = 0; start < events.length; start += PUBLISH_WINDOW) {
      const window = events.slice(start, start + PUBLISH_WINDOW);
      const acks = window.map((event) => {
        const msg = this.opts.toMessage(event);
        if (!msg) return null;
        return nats.js.publish(msg.subject, JSON.stringify(msg.payload), {
          msgID: event.eventId,
          timeout,
          headers: newHeaders({
            [EVENT_ID_HEADER]: event.eventId,
            [EVENT_TYPE_HEADER]: event.type,
            [STREAM_ID_HEADER]: event.streamId,
            [STREAM_VERSION_HEADER]: String(event.streamVersion),
            [CORRELATION_ID_HEADER]: event.metadata.correlationId,
          }),
        });
      });
      // Every ack is observed, so a failure never leaves an unhandled rejection.
      const settled = acks.map((a) => a?.then(() => null, (err: unknown) => err));
      for (let i = 0; i < window.length; i++) {
        const event = window[i]!;
        const outcome = await Promise.race([settled[i], reconnected]);
        if (outcome) throw outcome;
        this.owed.delete(event.eventId);
        if (acks[i]) {
          published++;
          this.opts.metrics?.eventsPublished.inc({ type: event.type });
        }
        await this.opts.afterPublish?.(event);
      }
    }
    const last = events[events.length - 1]!;
    Object.assign(lease, { txId: last.txId, position: last.position, dirty: true });
    this.opts.metrics?.outboxLagSeconds.set((Date.now() - Date.parse(last.occurredAt)) / 1000);
    return published;
  }
}

/** Whether `a` comes after checkpoint `b` in the relay's order (tx id, then position). */
function after(a: { txId: string; position: string }, b: { txId: string; position: string }): boolean {
  const ta = BigInt(a.txId);
  const tb = BigInt(b.txId);
  return ta !== tb ? ta > tb : BigInt(a.position) > BigInt(b.position);
}

export function errSummary(err: unknown): { message: string; code?: unknown } {
  const e = err as { message?: string; code?: unknown };
  return { message: e?.message ?? String(err), code: e?.code };
}
