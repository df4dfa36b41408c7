import { describe, expect, it } from 'vitest';
import { APPROVAL_PREFIX, REQUEST_PREFIX, decodeLinkToken, encodeLinkToken } from './link-token.js';

describe('link tokens', () => {
  it('round-trip as one shell-safe line', () => {
    const value = { type: 'bil.link-request.v1', device_name: 'tablet "new"', secret: 'abc' };
    const token = encodeLinkToken(REQUEST_PREFIX, value);
    expect(token).toMatch(/^bil-link-request:[A-Za-z0-9_-]+$/);
    expect(JSON.parse(decodeLinkToken(REQUEST_PREFIX, `  ${token}\n`, 'link request'))).toEqual(value);
    // Without the prefix, and plain JSON, too.
    expect(JSON.parse(decodeLinkToken(REQUEST_PREFIX, token.slice(REQUEST_PREFIX.length), 'link request'))).toEqual(value);
    expect(decodeLinkToken(APPROVAL_PREFIX, '{"a":1}', 'link approval')).toBe('{"a":1}');
  });

  it('refuses anything else as a usage error', () => {
    expect(() => decodeLinkToken(REQUEST_PREFIX, 'hello world', 'link request')).toThrow(expect.objectContaining({ code: 'invalid_link', exitCode: 2 }));
    expect(() => decodeLinkToken(REQUEST_PREFIX, 'aGVsbG8', 'link request')).toThrow(/not a link request/);
  });
});
