import { describe, expect, it } from 'vitest';
import { deviceJson, int64ToNumber, tokensJson, userJson } from './mappers.js';

describe('mappers', () => {
  it('turns int64 strings into numbers and refuses unsafe ones', () => {
    expect(int64ToNumber('1764100000000')).toBe(1764100000000);
    expect(int64ToNumber('')).toBe(0);
    expect(() => int64ToNumber('9007199254740993')).toThrow(RangeError);
  });
  it('maps camelCase messages to snake_case JSON', () => {
    expect(
      deviceJson({
        deviceId: 'd',
        userId: 'u',
        name: 'n',
        encryptionKey: 'e',
        signingKey: 's',
        certificate: 'c',
        certificateIssuedAt: '5',
        createdAt: 't',
      }),
    ).toEqual({ device_id: 'd', user_id: 'u', name: 'n', encryption_key: 'e', signing_key: 's', certificate: 'c', certificate_issued_at: 5, created_at: 't' });
    expect(userJson(undefined).user_id).toBe('');
    expect(tokensJson({ accessToken: 'a', accessTokenExpiresAt: 'x', refreshToken: 'r', refreshTokenExpiresAt: 'y', tokenType: '', sessionId: 's' }).token_type).toBe('Bearer');
  });
});
