// Request context carried through async calls: the correlation id starts at
// the gateway (or a job), travels in gRPC metadata and event metadata, and is
// stamped on every log line.
//
// Two scopes, for two kinds of work. runWithContext (AsyncLocalStorage) follows
// work across awaits: a gRPC handler's event writes and abort signal, a job.
// withCorrelationId covers only the synchronous extent of a function, with no
// async tracking at all: enough at the edge, where the one reader is the start
// of an outgoing gRPC call (callUnary reads the id synchronously), and where
// AsyncLocalStorage's per-promise hooks cost ~23% of the gateway's CPU (issue 18).
// The gateway never enters the AsyncLocalStorage, so its hooks stay off there;
// its log lines carry the id through Fastify's per-request logger.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

export interface RequestContext {
  correlationId: string;
  /** The event or command that caused this work, when there is one. */
  causationId?: string;
  /** Aborted when the caller has gone: its gRPC call was cancelled or passed its deadline. */
  signal?: AbortSignal;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function currentContext(): RequestContext | undefined {
  return storage.getStore();
}

let syncCorrelationId: string | undefined;

export function correlationId(): string | undefined {
  return syncCorrelationId ?? storage.getStore()?.correlationId;
}

/**
 * Makes `id` the current correlation id for the synchronous part of `fn`
 * only (what `fn` does before its first await); no async context is tracked.
 */
export function withCorrelationId<T>(id: string, fn: () => T): T {
  const previous = syncCorrelationId;
  syncCorrelationId = id;
  try {
    return fn();
  } finally {
    syncCorrelationId = previous;
  }
}

export function runWithContext<T>(ctx: Partial<RequestContext>, fn: () => T): T {
  return storage.run({ correlationId: ctx.correlationId || randomUUID(), causationId: ctx.causationId, signal: ctx.signal }, fn);
}

/** The current call's abort signal (set by the gRPC server for each call), if any. */
export function callSignal(): AbortSignal | undefined {
  return storage.getStore()?.signal;
}

export const CORRELATION_HEADER = 'x-correlation-id';

/** Accepts a caller's correlation id only if it is short and plain. */
export function sanitizeCorrelationId(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(value) ? value : undefined;
}
