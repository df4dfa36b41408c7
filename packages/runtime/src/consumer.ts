// Durable, idempotent JetStream consumers. Each message is handled inside a
// database transaction that also records (consumer, event id) in
// processed_events, so a redelivery after a crash is recognised and skipped,
// and the effects and the record commit or roll back together. A handler that
// is idempotent by construction (an upsert keyed by chat and seq, say) opts
// out of that row with `dedupe: 'handler'`.
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { runWithContext } from './context.js';
import type { Database, Tx } from './db.js';
import type { Logger } from './logger.js';
import { CORRELATION_ID_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER, ensureStream, durableStreamOf, type Nats } from './nats.js';
import { errSummary } from './outbox.js';
import { OutageLog, isDependencyUnavailable } from './outage.js';

export interface IncomingEvent {
  eventId: string;
  type: string;
  subject: string;
  payload: Record<string, unknown>;
  correlationId?: string;
  /** JetStream stream sequence. */
  sequence: number;
}

export interface ConsumerOptions {
  nats: Nats;
  db: Database;
  logger: Logger;
  /** The producing context whose stream is read, e.g. `identity`. */
  context: string;
  /** Durable consumer name; also the idempotency key namespace. */
  durable: string;
  /** Subject filter relative to the prefix, e.g. `identity.v1.device.>`. */
  filter: string;
  handle: (tx: Tx, event: IncomingEvent) => Promise<void>;
  maxDeliver?: number;
  ackWaitMs?: number;
  /**
   * How long a processed event id is remembered (default 8 days). Longer than
   * the stream keeps messages (7 days, ensureStream), so no message that can
   * still be redelivered is forgotten.
   */
  retentionMs?: number;
  /** How often old ids are trimmed (default hourly; 0: only by calling trim()). */
  trimIntervalMs?: number;
  /**
   * How a redelivery is recognised. 'processed-events' (default): the
   * (consumer, event id) row written in the handler's transaction. 'handler':
   * the handler is idempotent by construction (applying an event twice leaves
   * what applying it once left, e.g. an upsert keyed by chat and seq that
   * never moves backwards), so no row is written per event: one statement
   * fewer per event and nothing to trim. Only for such handlers.
   */
  dedupe?: 'processed-events' | 'handler';
}

/** Rows deleted per statement when trimming, so no statement holds locks for long. */
const TRIM_BATCH = 5000;

export class DurableConsumer {
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private trimTimer?: NodeJS.Timeout;
  private readonly outage: OutageLog;

  constructor(private readonly opts: ConsumerOptions) {
    this.outage = new OutageLog(opts.logger, `consumer ${opts.durable}`);
  }

  /** Forgets processed event ids older than the retention; returns how many were deleted. */
  async trim(): Promise<number> {
    const { db, durable } = this.opts;
    const cutoff = new Date(Date.now() - (this.opts.retentionMs ?? 8 * 24 * 3600 * 1000)).toISOString();
    let total = 0;
    for (;;) {
      const rows = await db.query(
        `DELETE FROM "${db.schema}".processed_events WHERE ctid IN (
           SELECT ctid FROM "${db.schema}".processed_events WHERE consumer = ? AND processed_at < ? LIMIT ${TRIM_BATCH}
         ) RETURNING 1`,
        [durable, cutoff],
      );
      total += rows.length;
      if (rows.length < TRIM_BATCH) return total;
    }
  }

  async start(): Promise<void> {
    const { nats, durable } = this.opts;
    await ensureStream(nats, this.opts.context);
    // The context's stream, or the week-long copy of the filter's events (chat's own stream keeps an hour).
    const stream = durableStreamOf(nats.prefix, this.opts.context, `${nats.prefix}${this.opts.filter}`);
    const name = `${nats.prefix.replace(/\./g, '_')}${durable}`;
    const config = {
      durable_name: name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `${nats.prefix}${this.opts.filter}`,
      max_deliver: this.opts.maxDeliver ?? 20,
      ack_wait: nanos(this.opts.ackWaitMs ?? 30_000),
    };
    try {
      await nats.jsm.consumers.info(stream, name);
      await nats.jsm.consumers.update(stream, name, { filter_subject: config.filter_subject, max_deliver: config.max_deliver, ack_wait: config.ack_wait });
    } catch {
      await nats.jsm.consumers.add(stream, config);
    }
    const consumer = await nats.js.consumers.get(stream, name);
    // bind + expires 5 s: re-pull at once after a NATS reconnect (no consumer-info request, which can go
    // unanswered for 10 s at that moment), and replace a lost pull within ~5 s (see delivery's fan-out consumer).
    this.messages = await consumer.consume({ max_messages: 256, bind: true, expires: 5000 });
    logPullTrouble(this.messages, this.opts.logger, durable);
    this.loop = this.run(this.messages);
    const every = this.opts.dedupe === 'handler' ? 0 : (this.opts.trimIntervalMs ?? 3600_000);
    if (every > 0) {
      const trim = () =>
        void this.trim().then(
          (n) => n > 0 && this.opts.logger.info({ consumer: durable, deleted: n }, 'processed event ids trimmed'),
          (err: unknown) => this.opts.logger.warn({ err: errSummary(err), consumer: durable }, 'trimming processed event ids failed'),
        );
      trim();
      this.trimTimer = setInterval(trim, every);
      this.trimTimer.unref();
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.trimTimer);
    await this.messages?.close();
    await this.loop;
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const msg of messages) {
      await this.process(msg);
    }
  }

  private async process(msg: JsMsg): Promise<void> {
    const { db, logger, durable } = this.opts;
    const eventId = msg.headers?.get(EVENT_ID_HEADER) ?? '';
    let payload: Record<string, unknown>;
    try {
      payload = msg.json<Record<string, unknown>>();
    } catch {
      logger.error({ subject: msg.subject, seq: msg.seq }, 'undecodable event; terminated');
      msg.term();
      return;
    }
    const event: IncomingEvent = {
      eventId,
      type: msg.headers?.get(EVENT_TYPE_HEADER) ?? '',
      subject: msg.subject,
      payload,
      correlationId: msg.headers?.get(CORRELATION_ID_HEADER) || undefined,
      sequence: msg.seq,
    };
    await runWithContext({ correlationId: event.correlationId, causationId: eventId }, async () => {
      try {
        await db.tx(async (tx) => {
          if (this.opts.dedupe === 'handler') return this.opts.handle(tx, event);
          const fresh = await tx.query(
            `INSERT INTO "${db.schema}".processed_events (consumer, event_id) VALUES (?, ?)
             ON CONFLICT DO NOTHING RETURNING event_id`,
            [durable, eventId],
          );
          if (fresh.length === 0) return; // already applied: a redelivery
          await this.opts.handle(tx, event);
        });
        msg.ack();
        this.outage.ok();
      } catch (err) {
        const attempt = msg.info.deliveryCount;
        const max = this.opts.maxDeliver ?? 20;
        // A dependency outage is one line per state change; a failure of this event is logged each time.
        if (isDependencyUnavailable(err)) this.outage.failed(err, { subject: msg.subject });
        else logger.error({ err: errSummary(err), subject: msg.subject, eventId, attempt }, attempt >= max ? 'event handler failed; giving up on this event' : 'event handler failed; will retry');
        msg.nak(Math.min(30_000, 200 * 2 ** attempt));
      }
    });
  }
}

/** The client's reports that say live events are waiting: a pull refused (409) or lost, a consumer gone. */
const PULL_TROUBLE = new Set(['heartbeats_missed', 'exceeded_limits', 'consumer_deleted', 'consumer_not_found', 'stream_not_found']);

/**
 * Logs (warn) what the NATS client reports of a pull consumer's trouble. A
 * pull the server refused or lost leaves events waiting until the client has
 * missed two idle heartbeats (2 x expires/2: ~5 s here) and pulls again; the
 * client says so only on this status stream, so without it such a pause (seen
 * once in a bench: every delivery of a step ~5 s late) leaves nothing in the
 * logs. A NATS outage is not reported here (the client stops its heartbeat
 * check while disconnected): the outage logs cover it.
 */
export function logPullTrouble(messages: ConsumerMessages, logger: Logger, consumer: string): void {
  void (async () => {
    for await (const s of messages.status()) {
      if (PULL_TROUBLE.has(s.type)) logger.warn({ consumer, status: s }, 'NATS pull consumer stalled: events wait until the client pulls again');
    }
  })().catch(() => undefined);
}
