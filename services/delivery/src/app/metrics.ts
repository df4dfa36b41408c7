// Delivery's Prometheus metrics, on top of the runtime's per-service registry.
import { Counter, Gauge, Histogram } from 'prom-client';
import { EventPayloadError } from '@bil/proto/events';
import type { Logger, Metrics } from '@bil/runtime';

/** The plain counters: `bad_frames` are malformed or unknown client frames, `rate_limited` well-formed ones over their type's limit (both count toward closing the socket). */
export type DeliveryCounter = 'slow_consumer' | 'frames_out' | 'bad_frames' | 'rate_limited' | 'gap_fills';

export interface DeliveryMetrics {
  connections: Gauge;
  nodeMessages: Counter;
  fanoutSeconds: Histogram<'event'>;
  counters: Record<DeliveryCounter, Counter>;
  /** Web Push attempts by outcome: sent, gone (404/410), retry (transient), failed, skipped (too many in progress). */
  pushes: Counter<'outcome'>;
  /** Catch-up reads from chat (each attempt): `shared` serves many devices of a group (CatchUpMessages), `device` one device. */
  catchUpReads: Counter<'kind'>;
}

export function deliveryMetrics(m: Metrics): DeliveryMetrics {
  const registers = [m.registry];
  const counter = (name: string, help: string) => new Counter({ name, help, registers });
  return {
    connections: new Gauge({ name: 'bil_delivery_connections', help: 'Authenticated WebSockets on this node', registers }),
    nodeMessages: counter('bil_delivery_node_messages_total', 'Node-to-node fan-out messages sent'),
    fanoutSeconds: new Histogram({
      name: 'bil_delivery_fanout_seconds',
      help: 'Time to route one chat or digest event to every target node',
      labelNames: ['event'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    }),
    counters: {
      slow_consumer: counter('bil_delivery_slow_consumers_total', 'Sockets closed because their send queue passed the limit'),
      frames_out: counter('bil_delivery_frames_sent_total', 'Frames written to sockets'),
      bad_frames: counter('bil_delivery_bad_frames_total', 'Client frames refused as malformed or unknown'),
      rate_limited: counter('bil_delivery_rate_limited_frames_total', 'Client frames refused as over their per-type rate limit'),
      gap_fills: counter('bil_delivery_gap_fills_total', 'Live gaps repaired from the chat service'),
    },
    catchUpReads: new Counter({ name: 'bil_delivery_catchup_reads_total', help: 'Catch-up reads from chat, by kind (shared: many devices of a group; device: one)', labelNames: ['kind'], registers }),
    pushes: new Counter({ name: 'bil_delivery_pushes_total', help: 'Web Push requests to push services, by outcome', labelNames: ['outcome'], registers }),
  };
}

/**
 * Runs `route` for an event subject with the prefix stripped (e.g.
 * `chat.v1.message.posted`), timing it under the event's name (`message.posted`).
 * A payload that does not match its proto message is logged and skipped
 * (retrying cannot fix it); any other error is the caller's.
 */
export async function routeEvent(
  o: { metrics: DeliveryMetrics; logger: Logger; prefix: string },
  subject: string,
  route: (name: string) => Promise<void>,
): Promise<void> {
  const name = subject.startsWith(o.prefix) ? subject.slice(o.prefix.length) : subject;
  const started = process.hrtime.bigint();
  try {
    await route(name);
  } catch (err) {
    if (!(err instanceof EventPayloadError)) throw err;
    o.logger.error({ subject: name, err: err.message }, 'event skipped: payload does not match events.proto');
  } finally {
    o.metrics.fanoutSeconds.observe({ event: name.split('.').slice(2).join('.') }, Number(process.hrtime.bigint() - started) / 1e9);
  }
}
