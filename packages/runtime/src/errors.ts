// One error type for the whole system. A service throws an AppError with a
// stable, documented `code` (snake_case, part of the public API) and a kind
// that fixes both the gRPC status and the HTTP status at the edge.
import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { isErrorReason, type ErrorDetails, type ErrorDetailsOf, type ErrorReason } from '@bil/proto/errors';

export { ErrorReason, isErrorReason, type ErrorDetails, type ErrorDetailsByReason, type ErrorDetailsOf } from '@bil/proto/errors';

export type ErrorKind =
  | 'invalid_argument'
  | 'unauthenticated'
  | 'permission_denied'
  | 'not_found'
  | 'already_exists'
  | 'conflict'
  | 'failed_precondition'
  | 'rate_limited'
  | 'unavailable'
  | 'deadline_exceeded'
  /** A request or answer over a transport size limit (413 at the edge). */
  | 'too_large'
  | 'internal';

const grpcByKind: Record<ErrorKind, GrpcStatus> = {
  invalid_argument: GrpcStatus.INVALID_ARGUMENT,
  unauthenticated: GrpcStatus.UNAUTHENTICATED,
  permission_denied: GrpcStatus.PERMISSION_DENIED,
  not_found: GrpcStatus.NOT_FOUND,
  already_exists: GrpcStatus.ALREADY_EXISTS,
  conflict: GrpcStatus.ABORTED,
  failed_precondition: GrpcStatus.FAILED_PRECONDITION,
  rate_limited: GrpcStatus.RESOURCE_EXHAUSTED,
  unavailable: GrpcStatus.UNAVAILABLE,
  deadline_exceeded: GrpcStatus.DEADLINE_EXCEEDED,
  too_large: GrpcStatus.OUT_OF_RANGE,
  internal: GrpcStatus.INTERNAL,
};

const httpByKind: Record<ErrorKind, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  failed_precondition: 409,
  rate_limited: 429,
  unavailable: 503,
  deadline_exceeded: 504,
  too_large: 413,
  internal: 500,
};

const kindByGrpc = new Map<number, ErrorKind>(
  Object.entries(grpcByKind).map(([k, v]) => [v, k as ErrorKind]),
);

export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    /** Stable machine-readable code, e.g. `username_taken` (one of `ErrorReason`). */
    readonly code: ErrorReason,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
    this.name = 'AppError';
  }

  get httpStatus(): number {
    return httpByKind[this.kind];
  }

  get grpcStatus(): GrpcStatus {
    return grpcByKind[this.kind];
  }
}

export const invalidArgument = <R extends ErrorReason>(code: R, message: string, details?: ErrorDetailsOf<R>): AppError =>
  new AppError('invalid_argument', code, message, details);
export const notFound = <R extends ErrorReason>(code: R, message: string, details?: ErrorDetailsOf<R>): AppError =>
  new AppError('not_found', code, message, details);
export const alreadyExists = <R extends ErrorReason>(code: R, message: string, details?: ErrorDetailsOf<R>): AppError =>
  new AppError('already_exists', code, message, details);
export const permissionDenied = <R extends ErrorReason>(code: R, message: string, details?: ErrorDetailsOf<R>): AppError =>
  new AppError('permission_denied', code, message, details);
export const unauthenticated = <R extends ErrorReason>(code: R, message: string, details?: ErrorDetailsOf<R>): AppError =>
  new AppError('unauthenticated', code, message, details);
export const failedPrecondition = <R extends ErrorReason>(code: R, message: string, details?: ErrorDetailsOf<R>): AppError =>
  new AppError('failed_precondition', code, message, details);

/** Optimistic concurrency: the stream moved on since it was read. */
export class ConcurrencyError extends AppError {
  constructor(streamId: string, expected: number) {
    super('conflict', 'concurrent_modification', `stream ${streamId} is not at version ${expected}`, {});
    this.name = 'ConcurrencyError';
  }
}

const CODE_KEY = 'bil-error-code';
const DETAILS_KEY = 'bil-error-details';

/** Turns any thrown value into a gRPC ServiceError; internals never leak. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const app = err instanceof AppError ? err : new AppError('internal', 'internal', 'internal error');
  const metadata = new Metadata();
  metadata.set(CODE_KEY, app.code);
  if (Object.keys(app.details).length > 0) metadata.set(DETAILS_KEY, JSON.stringify(app.details));
  return { code: app.grpcStatus, details: app.message, metadata };
}

/** Turns a gRPC client error back into the AppError the server threw. */
export function fromServiceError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as Partial<ServiceError>;
  if (typeof e?.code !== 'number') return new AppError('internal', 'internal', 'internal error');
  const ours = (e.metadata?.get(CODE_KEY).length ?? 0) > 0;
  // A status without our code was raised by the gRPC library itself, not by a service: its text is
  // internal. RESOURCE_EXHAUSTED there is a message over a size limit ("Received message larger than
  // max"), not the client's rate: 413 `payload_too_large` without the library's text, never `rate_limited`.
  if (!ours && e.code === GrpcStatus.RESOURCE_EXHAUSTED) return tooLargeForBackend();
  const kind = kindByGrpc.get(e.code) ?? 'internal';
  const sent = e.metadata?.get(CODE_KEY)[0];
  // A code this build does not know (a newer service) still passes through: the enum is the set we raise, not a filter.
  const code = isErrorReason(sent) ? sent : typeof sent === 'string' ? (sent as ErrorReason) : defaultCode(kind);
  let details: ErrorDetails = {};
  const raw = e.metadata?.get(DETAILS_KEY)[0];
  if (typeof raw === 'string') {
    try {
      details = JSON.parse(raw) as ErrorDetails;
    } catch {
      details = {};
    }
  }
  const message =
    kind === 'unavailable' && !ours
      ? 'a backend service is unavailable, try again'
      : kind === 'deadline_exceeded' && !ours
        ? 'a backend service did not answer in time'
        : kind === 'internal' || !ours
          ? 'internal error'
          : (e.details ?? kind);
  if (!ours && kind !== 'unavailable' && kind !== 'deadline_exceeded') return new AppError('internal', 'internal', message);
  return new AppError(kind, code, message, details);
}

/** A request or its answer over a gRPC size limit between services. */
export function tooLargeForBackend(): AppError {
  return new AppError('too_large', 'payload_too_large', 'the request or its answer is larger than a backend service accepts; send less or ask for a smaller page');
}

function defaultCode(kind: ErrorKind): ErrorReason {
  if (kind === 'unavailable') return 'service_unavailable';
  if (kind === 'deadline_exceeded') return 'timeout';
  return kind;
}
