import { describe, expect, it } from 'vitest';
import { AppError } from '@bil/runtime';
import { toHttpError, validationDetails } from './errors.js';

describe('toHttpError', () => {
  it('keeps an AppError code, message and details with its HTTP status', () => {
    const h = toHttpError(new AppError('failed_precondition', 'too_many_devices', 'revoke one first', { max: 16 }));
    expect(h).toMatchObject({ status: 409, body: { error: { code: 'too_many_devices', message: 'revoke one first', details: { max: 16 } } } });
  });
  it('hides internal AppErrors and unknown errors', () => {
    for (const err of [new AppError('internal', 'db_down', 'pg at 10.0.0.1 refused'), new TypeError('x is undefined'), 'boom']) {
      expect(toHttpError(err)).toMatchObject({ status: 500, body: { error: { code: 'internal', message: 'internal error', details: {} } }, unexpected: true });
    }
  });
  it('adds WWW-Authenticate to every 401 and Retry-After to 429', () => {
    expect(toHttpError(new AppError('unauthenticated', 'invalid_credentials', 'wrong')).headers['www-authenticate']).toMatch(/^Bearer /);
    expect(toHttpError(new AppError('rate_limited', 'rate_limited', 'slow down', { retry_after_seconds: 7 })).headers['retry-after']).toBe('7');
  });
  it('maps Fastify errors by code', () => {
    const fst = (code: string, statusCode: number) => Object.assign(new Error('internal text'), { code, statusCode });
    expect(toHttpError(fst('FST_ERR_CTP_INVALID_JSON_BODY', 400)).body.error.code).toBe('invalid_json');
    expect(toHttpError(fst('FST_ERR_CTP_BODY_TOO_LARGE', 413)).body.error.code).toBe('payload_too_large');
    expect(toHttpError(fst('FST_ERR_CTP_INVALID_MEDIA_TYPE', 415)).body.error.code).toBe('unsupported_media_type');
    expect(toHttpError(fst('FST_ERR_SOMETHING_NEW', 400)).body.error).toEqual({ code: 'invalid_request', message: 'the request is malformed', details: {} });
  });
});

describe('validationDetails', () => {
  it('names nested, missing and unknown fields', () => {
    expect(validationDetails({ instancePath: '/a/0/b', keyword: 'type', message: 'must be string' }, 'body')).toEqual({
      message: 'a.0.b: must be string',
      details: { location: 'body', field: 'a.0.b', reason: 'must be string' },
    });
    expect(validationDetails({ instancePath: '', keyword: 'required', params: { missingProperty: 'x' } }, 'querystring').details).toEqual({
      location: 'querystring',
      field: 'x',
      reason: 'is required',
    });
    expect(validationDetails({ instancePath: '', keyword: 'type', message: 'must be object' }, 'body').message).toBe('body must be object');
  });
});
