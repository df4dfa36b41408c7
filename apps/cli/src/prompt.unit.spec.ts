import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ExitCode } from './errors.js';
import { ask } from './prompt.js';

// A terminal stand-in: readline in terminal mode reads keys from `input`.
const io = () => ({ input: new PassThrough(), output: new PassThrough() });

describe('ask (the device link "Approval:" prompt)', () => {
  it('returns the line typed', async () => {
    const t = io();
    const answer = ask('Approval: ', t);
    t.input.write('bil-link-approval:abc\r');
    await expect(answer).resolves.toBe('bil-link-approval:abc');
  });

  it('Ctrl-C rejects with the interrupted error (exit 130) instead of hanging', async () => {
    const t = io();
    const answer = ask('Approval: ', t);
    t.input.write('bil-link-appr\u0003');
    await expect(answer).rejects.toMatchObject({ code: 'interrupted', exitCode: ExitCode.interrupted });
  });

  it('the end of input (Ctrl-D on an empty line) is a usage error', async () => {
    const t = io();
    const answer = ask('Approval: ', t);
    t.input.write('\u0004');
    await expect(answer).rejects.toMatchObject({ code: 'usage', exitCode: ExitCode.usage });
    const closed = io();
    const ended = ask('Approval: ', closed);
    closed.input.end();
    await expect(ended).rejects.toMatchObject({ exitCode: ExitCode.usage });
  });
});
