// One error type for the whole system. A service throws an AppError with a
// stable, documented `code` (snake_case, part of the public API) and a kind
// that fixes both the gRPC status (grpc-errors.ts) and the HTTP status at the
// edge. Pure: part of `@bil/runtime/domain`, no gRPC import here.
import type { ErrorDetails, ErrorDetailsOf, ErrorReason } from '@bil/proto/errors';

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

/** A request or its answer over a gRPC size limit between services. */
export function tooLargeForBackend(): AppError {
  return new AppError('too_large', 'payload_too_large', 'the request or its answer is larger than a backend service accepts; send less or ask for a smaller page');
}
