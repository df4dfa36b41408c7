// Request context carried through async calls: the correlation id starts at
// the gateway (or a job), travels in gRPC metadata and event metadata, and is
// stamped on every log line.
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

export function correlationId(): string | undefined {
  return storage.getStore()?.correlationId;
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
