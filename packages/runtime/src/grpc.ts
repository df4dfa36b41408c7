// gRPC server and client set-up shared by every service: each unary handler
// runs inside the caller's correlation context, is timed, logged and has its
// errors mapped to status + stable reason; clients always set a deadline and
// forward the correlation id. The standard grpc.health.v1 service is served.
import {
  Server,
  ServerCredentials,
  credentials,
  Metadata,
  type ServiceDefinition,
  type ServerUnaryCall,
  type sendUnaryData,
  type Client,
  type ServiceError,
  type CallOptions,
} from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { AppError } from './errors.js';
import { fromServiceError, toServiceError } from './grpc-errors.js';
import { OutageLog, isDependencyUnavailable, outageError } from './outage.js';
import { CORRELATION_HEADER, correlationId, runWithContext, sanitizeCorrelationId } from './context.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { ServiceAuth } from './service-auth.js';

/** An async unary handler: request in, response out, AppError on failure. */
export type UnaryHandler<Req, Res> = (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>;

/** Maps each RPC name of a service to its async handler. */
export type AsyncHandlers<H> = {
  [K in keyof H as string extends K ? never : K]: H[K] extends (call: ServerUnaryCall<infer Req, infer Res>, cb: sendUnaryData<infer _R>) => void
    ? UnaryHandler<Req, Res>
    : never;
};

export interface GrpcServerOptions {
  logger: Logger;
  /** Refuses every call without this service's token (service-auth.ts); health checks aside. */
  auth: ServiceAuth;
  metrics?: Metrics;
  /** Largest accepted request in bytes. */
  maxReceiveBytes?: number;
  /**
   * Client connections are closed gracefully (GOAWAY) after this long (default
   * 5 min), so clients re-resolve the service's DNS name and spread over
   * replicas added since they connected; calls in flight get 30 s to finish.
   */
  maxConnectionAgeMs?: number;
}

export class GrpcServer {
  readonly server: Server;
  readonly health = new HealthImplementation({ '': 'NOT_SERVING' });
  private readonly names: string[] = [];
  /** A dependency (PostgreSQL, Redis) down: logged when it starts and ends, not per call. */
  private readonly outage: OutageLog;

  constructor(private readonly opts: GrpcServerOptions) {
    this.outage = new OutageLog(opts.logger, 'a dependency of the RPCs (they answer service_unavailable)');
    this.server = new Server({
      'grpc.max_receive_message_length': opts.maxReceiveBytes ?? 4 * 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.max_connection_age_ms': opts.maxConnectionAgeMs ?? 5 * 60_000,
      'grpc.max_connection_age_grace_ms': 30_000,
      interceptors: [opts.auth.serverInterceptor(opts.logger)],
    });
    this.health.addToServer(this.server);
  }

  /** Registers a service; `name` is its full proto name for health checks. */
  add<H>(name: string, definition: ServiceDefinition, handlers: AsyncHandlers<H>): void {
    const wrapped: Record<string, unknown> = {};
    for (const [method, fn] of Object.entries(handlers as Record<string, UnaryHandler<unknown, unknown>>)) {
      wrapped[method] = this.wrap(`${name}/${method}`, fn);
    }
    this.server.addService(definition, wrapped as never);
    this.names.push(name);
  }

  private wrap(method: string, fn: UnaryHandler<unknown, unknown>) {
    const { logger, metrics } = this.opts;
    return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const cid = sanitizeCorrelationId(call.metadata.get(CORRELATION_HEADER)[0]);
      const started = process.hrtime.bigint();
      // Aborted when the caller has gone (cancelled, or its deadline passed): work may be dropped.
      // grpc-js also reports 'cancelled' after every answered call: ignored then
      // (an abort there cost a DOMException and its listeners per call).
      const gone = new AbortController();
      let answered = false;
      call.once('cancelled', () => answered || gone.abort());
      const deadline = call.getDeadline();
      const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : typeof deadline === 'number' && Number.isFinite(deadline) ? deadline - Date.now() : Infinity;
      const timer = Number.isFinite(ms) ? setTimeout(() => gone.abort(), Math.max(0, Math.min(ms, 2 ** 31 - 1))) : undefined;
      timer?.unref();
      void runWithContext({ correlationId: cid, signal: gone.signal }, async () => {
        let code = 'OK';
        try {
          const res = await fn(call.request, call);
          this.outage.ok();
          answered = true;
          callback(null, res);
        } catch (err) {
          // A dependency outage is `unavailable` (503 + Retry-After at the edge), not a bug.
          const outage = !(err instanceof AppError) && isDependencyUnavailable(err);
          const app = err instanceof AppError ? err : outage ? outageError() : undefined;
          code = app?.code ?? 'internal';
          if (outage) {
            this.outage.failed(err, { method });
          } else if (!app || app.kind === 'internal') {
            logger.error({ err, method }, 'rpc failed');
          } else {
            logger.info({ method, code: app.code }, 'rpc refused');
          }
          answered = true;
          callback(toServiceError(app ?? err) as ServiceError);
        } finally {
          clearTimeout(timer);
          const seconds = Number(process.hrtime.bigint() - started) / 1e9;
          metrics?.rpcDuration.observe({ method, code }, seconds);
          logger.debug({ method, code, ms: Math.round(seconds * 1000) }, 'rpc');
        }
      });
    };
  }

  /** Binds and starts serving; returns the bound port. */
  async listen(host: string, port: number): Promise<number> {
    const bound = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    this.health.setStatus('', 'SERVING');
    for (const n of this.names) this.health.setStatus(n, 'SERVING');
    return bound;
  }

  /** Stops taking calls, lets in-flight calls finish for up to `graceMs`. */
  async shutdown(graceMs = 10_000): Promise<void> {
    this.health.setStatus('', 'NOT_SERVING');
    for (const n of this.names) this.health.setStatus(n, 'NOT_SERVING');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: CallOptions,
  callback: (err: ServiceError | null, res?: Res) => void,
) => unknown;

export interface CallSettings {
  /** Deadline in milliseconds from now. */
  timeoutMs?: number;
}

/**
 * Calls a unary RPC with a deadline and the current correlation id, and
 * returns the response or throws the AppError the server sent.
 */
export function callUnary<Req, Res>(
  client: Client,
  method: UnaryMethod<Req, Res>,
  request: Req,
  settings: CallSettings = {},
): Promise<Res> {
  const metadata = new Metadata();
  const cid = correlationId();
  if (cid) metadata.set(CORRELATION_HEADER, cid);
  const deadline = new Date(Date.now() + (settings.timeoutMs ?? 5000));
  return new Promise<Res>((resolve, reject) => {
    // grpc-js captures the caller's stack on every call (`new Error()`, for its error stacks), ~4 % of the
    // gateway's CPU per send in a profile; our errors carry the correlation id instead. Off for the
    // synchronous call only.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      method.call(client, request, metadata, { deadline }, (err, res) => {
        if (err) reject(fromServiceError(err));
        else resolve(res as Res);
      });
    } finally {
      Error.stackTraceLimit = limit;
    }
  });
}

export function insecureChannel() {
  return credentials.createInsecure();
}

/**
 * Client options every internal client uses. Reconnect backoff: grpc-js
 * starts at 1 s and grows ×1.6 up to 120 s, so a backend back after a minute
 * stayed unused for up to ~40 s more (calls failing fast with UNAVAILABLE
 * meanwhile). Capped at 500 ms (±20 % jitter), a channel tries again within
 * 0.6 s of the backend's return; two TCP connects a second to a down backend
 * cost nothing. DNS is re-resolved as often, so a backend that comes back on
 * a new address (a restarted pod behind a headless Service) is found as fast.
 */
export const clientOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 500,
  'grpc.dns_min_time_between_resolutions_ms': 1000,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.max_receive_message_length': 8 * 1024 * 1024,
  'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
};
