// One error shape for every answer the gateway gives:
//   {"error":{"code":"...","message":"...","details":{}}}
// This module turns anything thrown while serving a request (an AppError from
// identity or the gateway itself, a Fastify parsing or validation error, a bug)
// into that shape and its HTTP status. Internals never reach the client.
import { AppError, OUTAGE_RETRY_AFTER_SECONDS, type ErrorReason } from '@bil/runtime';

export interface ErrorBody {
  error: { code: ErrorReason; message: string; details: Record<string, unknown> };
}

export interface HttpError {
  status: number;
  body: ErrorBody;
  headers: Record<string, string>;
  /** True when the cause is a bug or an outage worth an error log line. */
  unexpected: boolean;
}

export function errorBody(code: ErrorReason, message: string, details: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, details } };
}

/** The challenge every 401 carries (RFC 6750 §3). */
export function bearerChallenge(code?: string): string {
  if (!code || code === 'missing_token') return 'Bearer realm="bil-api"';
  // RFC 6750 defines only invalid_request, invalid_token and insufficient_scope.
  return `Bearer realm="bil-api", error="invalid_token", error_description="${code}"`;
}

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  validation?: ValidationIssue[];
  validationContext?: string;
}

const genericByStatus: Record<number, [ErrorReason, string]> = {
  400: ['invalid_request', 'the request is malformed'],
  401: ['unauthenticated', 'authentication is required'],
  403: ['permission_denied', 'not allowed'],
  404: ['not_found', 'no such resource'],
  405: ['method_not_allowed', 'method not allowed'],
  406: ['not_acceptable', 'only application/json responses are available'],
  408: ['request_timeout', 'the request took too long to arrive'],
  411: ['length_required', 'a Content-Length is required'],
  413: ['payload_too_large', 'the request body is too large'],
  414: ['uri_too_long', 'the request URI is too long'],
  415: ['unsupported_media_type', 'the request body must be application/json'],
  429: ['rate_limited', 'too many requests'],
  431: ['headers_too_large', 'the request headers are too large'],
};

/** Names the offending field of a JSON-schema failure, e.g. `devices.0.name`. */
export function validationDetails(issue: ValidationIssue | undefined, location: string): {
  message: string;
  details: Record<string, unknown>;
} {
  if (!issue) return { message: `invalid ${location}`, details: { location } };
  const path = (issue.instancePath ?? '')
    .split('/')
    .filter(Boolean)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let reason = issue.message ?? 'is invalid';
  const params = issue.params ?? {};
  if (issue.keyword === 'required' && typeof params.missingProperty === 'string') {
    path.push(params.missingProperty);
    reason = 'is required';
  } else if (issue.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    path.push(params.additionalProperty);
    reason = 'is not allowed';
  } else if (issue.keyword === 'discriminator' && typeof params.tag === 'string') {
    // A body whose `type` (the discriminator) is missing or names no known shape.
    path.push(params.tag);
    reason = params.error === 'tag' ? 'is required and must be a string' : 'must be one of the documented values';
  }
  const field = path.join('.');
  const message = field ? `${field}: ${reason}` : `${location} ${reason}`;
  const details: Record<string, unknown> = { location, field: field || location, reason };
  return { message, details };
}

/** Whole seconds to wait before trying again: the backend's figure if it gave a sane one, else the outage default. */
export function retryAfterSeconds(fromBackend?: unknown): number {
  const n = Number(fromBackend);
  return Number.isFinite(n) && n > 0 && n <= 3600 ? Math.ceil(n) : OUTAGE_RETRY_AFTER_SECONDS;
}

/** The 503 of a gateway that is shutting down: the client tries again at once, on another replica. */
export function shuttingDown(): HttpError {
  return {
    status: 503,
    body: errorBody('service_unavailable', 'the server is restarting, try again', { retry_after_seconds: 1 }),
    headers: { 'retry-after': '1', connection: 'close' },
    unexpected: false,
  };
}

/** Maps any error raised while serving a request to status, body and headers. */
export function toHttpError(err: unknown): HttpError {
  const headers: Record<string, string> = {};
  if (err instanceof AppError) {
    if (err.kind === 'internal') {
      return { status: 500, body: errorBody('internal', 'internal error'), headers, unexpected: true };
    }
    const status = err.httpStatus;
    let details = err.details;
    if (status === 401) headers['www-authenticate'] = bearerChallenge(err.code);
    if (status === 429 || status === 503) {
      const retry = Number(err.details.retry_after_seconds);
      if (Number.isFinite(retry) && retry > 0) headers['retry-after'] = String(Math.ceil(retry));
    }
    if (status === 503) {
      // Every 503 says when to try again (RFC 9110 §10.2.3), in the header and in details.
      const retry = retryAfterSeconds(err.details.retry_after_seconds);
      headers['retry-after'] = String(retry);
      details = { ...err.details, retry_after_seconds: retry };
    }
    return {
      status,
      body: errorBody(err.code, err.message, details),
      headers,
      unexpected: status >= 500,
    };
  }

  const f = (typeof err === 'object' && err !== null ? err : {}) as FastifyLikeError;
  if (Array.isArray(f.validation)) {
    const { message, details } = validationDetails(f.validation[0], f.validationContext ?? 'body');
    return { status: 400, body: errorBody('invalid_request', message, details), headers, unexpected: false };
  }
  switch (f.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, body: errorBody('invalid_json', 'the request body is not valid JSON'), headers, unexpected: false };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, body: errorBody(...genericByStatus[413]!), headers, unexpected: false };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, body: errorBody(...genericByStatus[415]!), headers, unexpected: false };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_BAD_URL':
      return { status: 400, body: errorBody(...genericByStatus[400]!), headers, unexpected: false };
    default:
      break;
  }
  const status = typeof f.statusCode === 'number' ? f.statusCode : 500;
  if (status >= 400 && status < 500) {
    const [code, message] = genericByStatus[status] ?? ['invalid_request', 'the request is malformed'];
    if (status === 401) headers['www-authenticate'] = bearerChallenge();
    return { status, body: errorBody(code, message), headers, unexpected: false };
  }
  return { status: 500, body: errorBody('internal', 'internal error'), headers, unexpected: true };
}
