import { describe, expect, it } from 'vitest';
import { DEFAULT_MODEL_URL, planDigest, whoReads } from './digest-options.js';
import { ExitCode } from './errors.js';

const usageError = expect.objectContaining({ exitCode: ExitCode.usage });

describe('bil digest: what it is asked to do', () => {
  it('is a server digest by default, with the SDK\'s threshold and a 120 s wait', () => {
    expect(planDigest([], {}, {})).toEqual({ mode: { on: 'server' }, minUnread: undefined, timeoutMs: 120_000, resume: undefined, yes: false });
    expect(planDigest(['Trip'], { minUnread: '5', timeout: '30', yes: true }, {})).toMatchObject({ minUnread: 5, timeoutMs: 30_000, yes: true });
  });

  it('runs on this device with --on-device', () => {
    expect(planDigest([], { onDevice: true }, { BIL_MODEL_API_KEY: 'sk-x' }).mode).toEqual({ on: 'device' });
  });

  it('calls your model with --model, the key from BIL_MODEL_API_KEY only', () => {
    expect(planDigest([], { model: 'gpt-4o-mini' }, { BIL_MODEL_API_KEY: 'sk-x' }).mode).toEqual({
      on: 'model',
      model: { apiKey: 'sk-x', baseURL: DEFAULT_MODEL_URL, model: 'gpt-4o-mini' },
    });
    expect(planDigest([], { model: 'llama3', modelUrl: 'http://127.0.0.1:11434/v1/' }, { BIL_MODEL_API_KEY: 'x' }).mode).toMatchObject({
      model: { baseURL: 'http://127.0.0.1:11434/v1' },
    });
    expect(() => planDigest([], { model: 'm' }, {})).toThrow(/BIL_MODEL_API_KEY/);
    expect(() => planDigest([], { model: 'm' }, { BIL_MODEL_API_KEY: '' })).toThrow(usageError);
    expect(() => planDigest([], { model: ' ' }, { BIL_MODEL_API_KEY: 'k' })).toThrow(/name the model/);
    expect(() => planDigest([], { model: 'm', modelUrl: 'file:///etc' }, { BIL_MODEL_API_KEY: 'k' })).toThrow(usageError);
  });

  it('refuses flags that contradict each other', () => {
    const key = { BIL_MODEL_API_KEY: 'k' };
    expect(() => planDigest([], { onDevice: true, model: 'm' }, key)).toThrow(/not both/);
    expect(() => planDigest([], { modelUrl: 'http://x' }, key)).toThrow(/needs --model/);
    expect(() => planDigest(['Trip'], { resume: 'abc' }, key)).toThrow(/no chats/);
    expect(() => planDigest([], { resume: 'abc', onDevice: true }, key)).toThrow(/server digests/);
    expect(() => planDigest([], { resume: '../x' }, key)).toThrow(/not a request id/);
    for (const minUnread of ['0', '-1', '1.5', 'x', '', '100001']) expect(() => planDigest([], { minUnread }, key), minUnread).toThrow(/--min-unread/);
    for (const timeout of ['0', 'soon', '3601']) expect(() => planDigest([], { timeout }, key), timeout).toThrow(/--timeout/);
    expect(planDigest([], { resume: '7c9e6679-7425-40de-944b-e07fc1f90ae7' }, key)).toMatchObject({ resume: '7c9e6679-7425-40de-944b-e07fc1f90ae7', mode: { on: 'server' } });
  });

  it('says plainly who can read the messages in each mode', () => {
    expect(whoReads({ on: 'device' })).toMatch(/nothing leaves it/);
    const model = whoReads({ on: 'model', model: { apiKey: 'sk-secret', baseURL: 'https://api.example.com/v1', model: 'm' } });
    expect(model).toMatch(/to api\.example\.com .*that provider can read them; no bil server does/);
    expect(model).not.toContain('sk-secret');
    expect(model).not.toContain('plain http');
    const lan = { on: 'model', model: { apiKey: 'k', baseURL: 'http://192.168.1.5:11434/v1', model: 'llama3' } } as const;
    expect(whoReads(lan)).toContain('Over plain http: anyone on the network path can read them and your key too.');
    expect(whoReads({ ...lan, model: { ...lan.model, baseURL: 'http://127.0.0.1:11434/v1' } })).not.toContain('plain http');
    const server = whoReads({ on: 'server' }, { fingerprint: 'd30f 1ee9', from: 'servers.json' });
    expect(server).toMatch(/sealed to the digest service \(key d30f 1ee9, from servers.json\): its operator and the model provider it uses can read them/);
  });
});
