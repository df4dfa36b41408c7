// fromServiceError: statuses raised by the gRPC library itself (no bil error
// code in the metadata) never pass their internal text to clients, and a
// size-limit RESOURCE_EXHAUSTED is not a rate limit (issue #14 item 2).
import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { AppError } from './errors.js';
import { fromServiceError, toServiceError } from './grpc-errors.js';

describe('fromServiceError', () => {
  it('maps a library RESOURCE_EXHAUSTED (message over the size limit) to 413 payload_too_large, without its text', () => {
    const err = fromServiceError({ code: status.RESOURCE_EXHAUSTED, details: 'Received message larger than max (18064435 vs 16777216)', metadata: new Metadata() });
    expect(err).toMatchObject({ kind: 'too_large', code: 'payload_too_large' });
    expect(err.message).not.toMatch(/larger than max|18064435/);
    expect(err.httpStatus).toBe(413);
  });

  it('keeps a service-raised rate limit as rate_limited with its message and details', () => {
    const sent = toServiceError(new AppError('rate_limited', 'rate_limited', 'slow down', { retry_after_seconds: 3 }));
    const err = fromServiceError(sent);
    expect(err).toMatchObject({ kind: 'rate_limited', code: 'rate_limited', message: 'slow down', details: { retry_after_seconds: 3 } });
  });

  it('hides the text of any other library-raised status', () => {
    const err = fromServiceError({ code: status.INVALID_ARGUMENT, details: 'Request message serialization failure: foo.bar', metadata: new Metadata() });
    expect(err).toMatchObject({ kind: 'internal', message: 'internal error' });
    expect(fromServiceError({ code: status.UNAVAILABLE, details: 'No connection established', metadata: new Metadata() })).toMatchObject({
      kind: 'unavailable',
      code: 'service_unavailable',
      message: 'a backend service is unavailable, try again',
    });
  });
});
