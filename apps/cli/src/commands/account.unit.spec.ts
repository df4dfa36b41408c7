import { describe, expect, it } from 'vitest';
import type { App } from '../app.js';
import { ExitCode } from '../errors.js';
import { deviceRevoke } from './account.js';

// Refused before the profile is even opened: an App that must not be used.
const untouchable = new Proxy({}, { get: (_t, key) => { throw new Error(`App.${String(key)} used`); } }) as App;

describe('device revoke', () => {
  it('needs at least 4 characters of the device id', async () => {
    for (const ref of ['a', 'ab', 'abc', '  ab  ']) {
      await expect(deviceRevoke(untouchable, ref, {})).rejects.toMatchObject({ code: 'usage', exitCode: ExitCode.usage, message: expect.stringContaining('at least 4 characters') });
    }
  });
});
