// A fan-out work queue: one durable pull consumer of a context's stream,
// shared by every delivery node, so each event is handled by exactly one node
// at a time (JetStream redelivers it to another node if that one dies before
// acking). NATS 2.9 allows one filter per consumer: `chat.v1.>` covers
// messages, membership, keys and read markers; `digest.v1.>` covers digest
// results, failures and policy changes.
//
// An event is never given up while it fails (max_deliver -1): a failure here
// is Redis, NATS or chat being unreachable, and a connected device would
// otherwise miss a stored message until a later one revealed the gap. It is
// redelivered with a backoff of 100 ms doubling to at most
// DELIVERY_FANOUT_MAX_RETRY_MS (2 s), so live delivery resumes within about
// that long of the dependency's return; the log has one line when fan-out
// starts failing and one when it recovers. Events that can never succeed
// (undecodable, a chat chat refuses) are terminated or skipped, not retried.
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { ensureStream, logPullTrouble, runWithContext, OutageLog, CORRELATION_ID_HEADER, EVENT_ID_HEADER, type Logger, type Nats } from '@bil/runtime';

export interface FanoutConsumerOptions {
  nats: Nats;
  /** The context whose stream is consumed (`chat` or `digest`). */
  context: string;
  logger: Logger;
  /** Durable name (prefixed); every node uses the same one. */
  durable: string;
  handle: (subject: string, payload: Record<string, unknown>) => Promise<void>;
  ackWaitMs?: number;
  /** Events handled at once by this node. */
  concurrency?: number;
  /** Longest pause before an event that failed is redelivered (default 2000 ms). */
  maxRetryDelayMs?: number;
}

/** Redeliveries are unlimited: the event is retried until it succeeds. */
const UNLIMITED = -1;

export class FanoutConsumer {
  private messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private readonly outage: OutageLog;

  constructor(private readonly opts: FanoutConsumerOptions) {
    this.outage = new OutageLog(opts.logger, `${opts.context} fan-out`);
  }

  async start(): Promise<void> {
    const { nats } = this.opts;
    const stream = await ensureStream(nats, this.opts.context);
    const name = `${nats.prefix.replace(/\./g, '_')}${this.opts.durable}`;
    const filter = `${nats.prefix}${this.opts.context}.v1.>`;
    const ackWait = nanos(this.opts.ackWaitMs ?? 10_000);
    const info = await nats.jsm.consumers.info(stream, name).catch(() => undefined);
    if (info) {
      // Consumers created before retries became unlimited (max_deliver 5) are updated in place.
      if (info.config.max_deliver !== UNLIMITED || info.config.ack_wait !== ackWait) {
        await nats.jsm.consumers.update(stream, name, { max_deliver: UNLIMITED, ack_wait: ackWait });
      }
    } else {
      try {
        await nats.jsm.consumers.add(stream, {
          durable_name: name,
          ack_policy: AckPolicy.Explicit,
          // Missed history is served by catch-up (chat) or a fetch (digest), never replayed here.
          deliver_policy: DeliverPolicy.New,
          filter_subject: filter,
          max_deliver: UNLIMITED,
          ack_wait: ackWait,
          max_ack_pending: 10_000,
        });
      } catch (err) {
        // Another node created it at the same moment.
        await nats.jsm.consumers.info(stream, name).catch(() => {
          throw err;
        });
      }
    }
    const consumer = await nats.js.consumers.get(stream, name);
    // bind: after a NATS reconnect the client re-pulls at once instead of first asking for the
    // consumer's info (a request sent at the moment of reconnecting can go unanswered for the
    // client's 10 s timeout: live delivery stalled that long). expires 5 s: a pull lost anyway is
    // replaced after two missed idle heartbeats (2 × 2.5 s), not 2 × 15 s.
    this.messages = await consumer.consume({ max_messages: 512, bind: true, expires: 5000 });
    logPullTrouble(this.messages, this.opts.logger, name);
    this.loop = this.run(this.messages);
  }

  async stop(): Promise<void> {
    await this.messages?.close();
    await this.loop;
  }

  /**
   * Handles up to `concurrency` events at once: each mostly waits on Redis,
   * and per-socket ordering is restored by the connection (seq order per chat).
   */
  private async run(messages: ConsumerMessages): Promise<void> {
    const limit = this.opts.concurrency ?? 64;
    const inflight = new Set<Promise<void>>();
    for await (const msg of messages) {
      const p = this.process(msg).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= limit) await Promise.race(inflight);
    }
    await Promise.all(inflight);
  }

  private async process(msg: JsMsg): Promise<void> {
    let payload: Record<string, unknown>;
    try {
      payload = msg.json<Record<string, unknown>>();
    } catch {
      this.opts.logger.error({ subject: msg.subject, seq: msg.seq }, 'undecodable event; terminated');
      msg.term();
      return;
    }
    const correlationId = msg.headers?.get(CORRELATION_ID_HEADER) || undefined;
    const eventId = msg.headers?.get(EVENT_ID_HEADER) || undefined;
    await runWithContext({ correlationId, causationId: eventId }, async () => {
      try {
        await this.opts.handle(msg.subject, payload);
        msg.ack();
        this.outage.ok();
      } catch (err) {
        const attempt = msg.info.deliveryCount;
        this.outage.failed(err, { subject: msg.subject, attempt });
        msg.nak(Math.min(this.opts.maxRetryDelayMs ?? 2000, 50 * 2 ** attempt));
      }
    });
  }
}
