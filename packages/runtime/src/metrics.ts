// Prometheus metrics per service, plus the HTTP server that exposes them with
// the liveness and readiness endpoints the Kubernetes probes call.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { OUTAGE_RETRY_AFTER_SECONDS } from './outage.js';

export class Metrics {
  readonly registry = new Registry();
  readonly rpcDuration: Histogram<'method' | 'code'>;
  readonly eventsAppended: Counter<'type'>;
  readonly eventsPublished: Counter<'type'>;
  readonly outboxBatches: Counter<'read'>;
  readonly outboxLagSeconds: Gauge;

  constructor(readonly service: string) {
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry });
    this.rpcDuration = new Histogram({
      name: 'bil_rpc_duration_seconds',
      help: 'gRPC handler duration by method and status code',
      labelNames: ['method', 'code'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    this.eventsAppended = new Counter({
      name: 'bil_events_appended_total',
      help: 'Events appended to the event store',
      labelNames: ['type'],
      registers: [this.registry],
    });
    this.eventsPublished = new Counter({
      name: 'bil_outbox_events_published_total',
      help: 'Events the outbox relay published to JetStream',
      labelNames: ['type'],
      registers: [this.registry],
    });
    this.outboxBatches = new Counter({
      name: 'bil_outbox_batches_total',
      help: 'Batches the outbox relay published, by how they were read: relay (a read of its own) or commit (read with a pipelined commit)',
      labelNames: ['read'],
      registers: [this.registry],
    });
    this.outboxLagSeconds = new Gauge({
      name: 'bil_outbox_lag_seconds',
      help: 'Age of the last event the outbox relay published when it published it',
      registers: [this.registry],
    });
  }
}

export interface OpsServerOptions {
  port: number;
  host?: string;
  metrics: Metrics;
  /** Readiness: throws (or rejects) when a dependency is down. */
  ready: () => Promise<void>;
}

/** `/metrics`, `/healthz` (process alive) and `/readyz` (dependencies reachable). */
export async function startOpsServer(opts: OpsServerOptions): Promise<Server> {
  const server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/metrics') {
        res.setHeader('content-type', opts.metrics.registry.contentType);
        res.end(await opts.metrics.registry.metrics());
      } else if (req.url === '/healthz') {
        res.setHeader('content-type', 'application/json');
        res.end('{"status":"ok"}');
      } else if (req.url === '/readyz') {
        res.setHeader('content-type', 'application/json');
        try {
          await opts.ready();
          res.end('{"status":"ready"}');
        } catch (err) {
          res.statusCode = 503;
          res.setHeader('retry-after', String(OUTAGE_RETRY_AFTER_SECONDS));
          res.end(JSON.stringify({ status: 'not_ready', reason: (err as Error).message }));
        }
      } else {
        res.statusCode = 404;
        res.end();
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return server;
}
