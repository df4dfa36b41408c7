// The gRPC side of AppError: the status each ErrorKind maps to, and the
// conversions of a thrown error to a gRPC ServiceError (server) and back
// (client). Kept out of errors.ts so that `@bil/runtime/domain` carries no
// gRPC import.
import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { AppError, isErrorReason, tooLargeForBackend, type ErrorDetails, type ErrorKind, type ErrorReason } from './errors.js';

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

const kindByGrpc = new Map<number, ErrorKind>(
  Object.entries(grpcByKind).map(([k, v]) => [v, k as ErrorKind]),
);

/** The gRPC status an AppError travels with. */
export function grpcStatusOf(err: AppError): GrpcStatus {
  return grpcByKind[err.kind];
}

const CODE_KEY = 'bil-error-code';
const DETAILS_KEY = 'bil-error-details';

/** Turns any thrown value into a gRPC ServiceError; internals never leak. */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const app = err instanceof AppError ? err : new AppError('internal', 'internal', 'internal error');
  const metadata = new Metadata();
  metadata.set(CODE_KEY, app.code);
  if (Object.keys(app.details).length > 0) metadata.set(DETAILS_KEY, JSON.stringify(app.details));
  return { code: grpcStatusOf(app), details: app.message, metadata };
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

function defaultCode(kind: ErrorKind): ErrorReason {
  if (kind === 'unavailable') return 'service_unavailable';
  if (kind === 'deadline_exceeded') return 'timeout';
  return kind;
}
