// Group commit of finished digest jobs: the completions that come in while
// one transaction is being written wait for it, then go together in the next
// (DigestCompleted of every request appended in one statement,
// EventStore.appendMany, and all their sealed results in one insert): one
// transaction and one fsync for many jobs instead of one each. Nothing waits
// on a timer: a completion arriving while nothing is being written goes at
// once.
//
// Same guarantees as one transaction per job: each request is decided on the
// state read when its job started and appended at that version; a request
// whose stream moved since (another worker, the sweeper) is decided again on
// its current state in a transaction of its own, retried on a conflict; the
// results insert is idempotent. When the whole batch fails (the database went
// away), each completion is tried alone, so an error reaches only the jobs it
// belongs to.
import { currentContext, runWithContext, type Database, type EventMetadata, type EventStore, type LoadedStream, type RequestContext, type Tx } from '@bil/runtime';
import { digestDecider, type DigestCommand, type DigestState } from '../domain/digest/digest.js';

export interface Completion {
  requestId: string;
  /** The request's stream as read when the job started. */
  loaded: LoadedStream<DigestState>;
  command: Extract<DigestCommand, { type: 'CompleteDigest' }>;
  results: ReadonlyArray<{ chatId: string; sealed: string }>;
  expiresAt: string;
}

interface Waiting {
  c: Completion;
  /** The job's context: its events carry its own correlation and causation ids, whichever job's turn writes them. */
  ctx: RequestContext | undefined;
  resolve(stored: boolean): void;
  reject(err: unknown): void;
}

/** Most completions in one transaction. */
const MAX_BATCH = 64;

export class Completions {
  private queue: Waiting[] = [];
  private writing = false;

  constructor(
    private readonly db: Database,
    private readonly store: EventStore,
  ) {}

  /** Stores a job's results and DigestCompleted; resolves false when the request was already settled. */
  complete(c: Completion): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ c, ctx: currentContext(), resolve, reject });
      if (!this.writing) void this.write();
    });
  }

  private async write(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        // One completion per request in a batch (two runs of one job: the second waits for the next).
        const batch: Waiting[] = [];
        const later: Waiting[] = [];
        const ids = new Set<string>();
        for (const w of this.queue) {
          if (batch.length < MAX_BATCH && !ids.has(w.c.requestId)) {
            ids.add(w.c.requestId);
            batch.push(w);
          } else later.push(w);
        }
        this.queue = later;
        await this.commit(batch);
      }
    } finally {
      this.writing = false;
    }
  }

  private async commit(batch: Waiting[]): Promise<void> {
    const decided = batch.map((w) => {
      const events = digestDecider.decide(w.c.command, w.c.loaded.state);
      const metadata: EventMetadata = { correlationId: w.ctx?.correlationId, causationId: w.ctx?.causationId };
      return { w, stream: { ...w.c.loaded }, events, newState: events.reduce(digestDecider.evolve, w.c.loaded.state), metadata };
    });
    for (const d of decided) if (d.events.length === 0) d.w.resolve(false);
    const live = decided.filter((d) => d.events.length > 0);
    if (live.length === 0) return;
    let outcome: Array<'stored' | 'moved'>;
    try {
      outcome = await this.db.tx(async (tx) => {
        const appended = await this.store.appendMany(tx, live);
        const stored = live.filter((_, i) => appended[i] !== undefined);
        await insertResults(tx, stored.flatMap((d) => d.w.c.results.map((r) => ({ request_id: d.w.c.requestId, chat_id: r.chatId, sealed: r.sealed, expires_at: d.w.c.expiresAt }))));
        return appended.map((a) => (a ? 'stored' : 'moved'));
      });
    } catch {
      // The batch as a whole failed: each alone, so that its error (if any) is its own.
      await Promise.all(live.map((d) => this.alone(d.w).then(d.w.resolve, d.w.reject)));
      return;
    }
    await Promise.all(
      live.map((d, i) => (outcome[i] === 'stored' ? d.w.resolve(true) : this.alone(d.w).then(d.w.resolve, d.w.reject))),
    );
  }

  /** One completion in its own transaction, decided on the stream as it now is (retried on a conflict). */
  private alone({ c, ctx }: Waiting): Promise<boolean> {
    return runWithContext(ctx ?? {}, () => this.store.transact(async (tx) => {
      const stream = await this.store.load(tx, digestDecider, c.loaded.streamId);
      const events = digestDecider.decide(c.command, stream.state);
      if (events.length === 0) return false;
      await this.store.append(tx, stream, events, events.reduce(digestDecider.evolve, stream.state));
      await insertResults(tx, c.results.map((r) => ({ request_id: c.requestId, chat_id: r.chatId, sealed: r.sealed, expires_at: c.expiresAt })));
      return true;
    }));
  }
}

/** The sealed results of stored completions, one statement; a result already there stays (a second run of a job). */
async function insertResults(tx: Tx, rows: Array<{ request_id: string; chat_id: string; sealed: string; expires_at: string }>): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO digest.results (request_id, chat_id, sealed, expires_at)
     SELECT x.request_id, x.chat_id, x.sealed, x.expires_at
     FROM jsonb_to_recordset(?::jsonb) AS x(request_id uuid, chat_id uuid, sealed text, expires_at timestamptz)
     ON CONFLICT DO NOTHING`,
    [JSON.stringify(rows)],
  );
}
