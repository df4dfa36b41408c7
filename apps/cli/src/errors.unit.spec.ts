import { describe, expect, it } from 'vitest';
import { BilApiError, BilNetworkError, BilProtocolError, BilStateError, BilTrustError, DigestFailedError, KeyStoreFormatError, SessionEndedError, WrongPassphraseError } from '@bil/sdk';
import { CliError, describeFailure, ExitCode } from './errors.js';

const URL = 'http://localhost:8080';
const api = (status: number, code: string, details: Record<string, unknown> = {}) => new BilApiError({ status, code, message: `${code} message`, details });

describe('exit codes and messages', () => {
  it('maps server answers by status and code', () => {
    expect(describeFailure(api(404, 'chat_not_found'), URL)).toMatchObject({ exitCode: ExitCode.notFound, code: 'chat_not_found', message: 'chat_not_found message' });
    expect(describeFailure(api(404, 'user_not_found'), URL).exitCode).toBe(ExitCode.notFound);
    expect(describeFailure(api(401, 'invalid_credentials'), URL)).toMatchObject({ exitCode: ExitCode.auth, hint: expect.stringContaining('BIL_PASSWORD') });
    expect(describeFailure(api(403, 'device_revoked'), URL).exitCode).toBe(ExitCode.auth);
    expect(describeFailure(api(409, 'username_taken'), URL)).toMatchObject({ exitCode: ExitCode.error, code: 'username_taken' });
    expect(describeFailure(api(403, 'not_an_admin'), URL)).toMatchObject({ exitCode: ExitCode.error, code: 'not_an_admin' });
    expect(describeFailure(api(503, 'service_unavailable'), URL).exitCode).toBe(ExitCode.unreachable);
    expect(describeFailure(api(504, 'timeout'), URL).exitCode).toBe(ExitCode.unreachable);
    expect(describeFailure(api(429, 'rate_limited', { retry_after_seconds: 12 }), URL)).toMatchObject({ exitCode: ExitCode.error, hint: 'try again in 12 s' });
  });

  it('names the server it could not reach, and the reason', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    const f = describeFailure(new BilNetworkError('GET /v1/me: request failed', { cause: new TypeError('fetch failed', { cause }) }), URL);
    expect(f).toMatchObject({ exitCode: ExitCode.unreachable, code: 'network', message: `cannot reach the server at ${URL} (ECONNREFUSED)` });
    expect(describeFailure(new BilNetworkError('x', { code: 'timeout' }), URL).message).toContain('no answer in time');
  });

  it('maps local failures', () => {
    expect(describeFailure(new WrongPassphraseError(), URL)).toMatchObject({ exitCode: ExitCode.wrongPassphrase, code: 'wrong_passphrase' });
    expect(describeFailure(new KeyStoreFormatError('not JSON'), URL).exitCode).toBe(ExitCode.error);
    expect(describeFailure(new SessionEndedError({ status: 401, code: 'refresh_token_reused', message: 'reused' }), URL)).toMatchObject({ exitCode: ExitCode.auth, hint: 'sign in again: bil login' });
    expect(describeFailure(new BilStateError('not_signed_in', 'x'), URL)).toMatchObject({ exitCode: ExitCode.auth, message: 'not signed in' });
    expect(describeFailure(new BilStateError('no_profile', 'x'), URL).exitCode).toBe(ExitCode.auth);
    expect(describeFailure(new BilStateError('identity_changed', 'x'), URL).exitCode).toBe(ExitCode.trust);
    expect(describeFailure(new BilStateError('invalid_link', 'x'), URL).exitCode).toBe(ExitCode.usage);
    expect(describeFailure(new BilStateError('digest_key_not_configured', 'x'), URL)).toMatchObject({ exitCode: ExitCode.usage, hint: expect.stringContaining('bil digest key set') });
    expect(describeFailure(new BilStateError('digest_disclosure_required', 'x'), URL)).toMatchObject({ exitCode: ExitCode.usage, hint: expect.stringContaining('--yes') });
    expect(describeFailure(new BilStateError('digest_key_untrusted', 'not signed by the configured key'), URL)).toMatchObject({
      exitCode: ExitCode.trust,
      message: 'not signed by the configured key; nothing was sent',
    });
    expect(describeFailure(new DigestFailedError('summarizer_unavailable'), URL)).toMatchObject({ exitCode: ExitCode.error, code: 'digest_failed', message: 'the digest failed: summarizer_unavailable' });
    expect(describeFailure(new CliError('profile_busy', 'busy', ExitCode.busy, 'wait'), URL)).toEqual({ exitCode: ExitCode.busy, code: 'profile_busy', message: 'busy', hint: 'wait' });
  });

  it('maps trust refusals to exit 7 with a sentence and what to do, and malformed answers to 1', () => {
    const unverified = describeFailure(new BilTrustError('server_change_unverified', 'refused to sign the next epoch: the server no longer lists bob, with no leave signed by them', { chat_id: 'c' }), URL);
    expect(unverified).toMatchObject({ exitCode: ExitCode.trust, code: 'server_change_unverified' });
    expect(unverified.message).toContain('no member signed');
    expect(unverified.message).toContain('the server no longer lists bob');
    expect(describeFailure(new BilTrustError('group_forked', 'forked at epoch 3', { chat_id: '0190a0b0-0000-7000-8000-000000000001' }), URL).hint).toContain('bil chat resolve-fork 0190a0b0');
    for (const code of ['identity_changed', 'chat_id_mismatch', 'device_list_rollback', 'device_list_invalid', 'rotation_pending'] as const) {
      expect(describeFailure(new BilTrustError(code, 'x'), URL).exitCode).toBe(ExitCode.trust);
    }
    expect(describeFailure(new BilProtocolError('messages page.messages: expected a list, got null'), URL)).toMatchObject({ exitCode: ExitCode.error, code: 'protocol_error' });
  });

  it('reports a bug without its stack', () => {
    const f = describeFailure(new TypeError('x is not a function'), URL);
    expect(f).toMatchObject({ exitCode: ExitCode.error, code: 'internal', message: 'unexpected error: x is not a function' });
    expect(JSON.stringify(f)).not.toContain('    at ');
  });

  it('maps trust refusals to exit 7 with a sentence a person understands; protocol errors to 1', () => {
    const rollback = describeFailure(new BilTrustError('device_list_rollback', 'version 1 after 3', { user_id: 'u1' }), URL);
    expect(rollback).toMatchObject({ exitCode: ExitCode.trust, code: 'device_list_rollback' });
    expect(rollback.message).toContain('older list of someone\'s devices');
    expect(rollback.message).toContain('u1');
    expect(describeFailure(new BilTrustError('device_list_invalid', 'bad'), URL)).toMatchObject({ exitCode: ExitCode.trust, message: expect.stringContaining('not signed by the identity key') });
    for (const code of ['identity_changed', 'server_change_unverified', 'group_forked', 'chat_id_mismatch', 'rotation_pending'] as const) {
      expect(describeFailure(new BilTrustError(code, 'x'), URL)).toMatchObject({ exitCode: 7, code });
    }
    expect(describeFailure(new BilProtocolError('devices is null'), URL)).toMatchObject({ exitCode: ExitCode.error, code: 'protocol_error' });
  });
});
