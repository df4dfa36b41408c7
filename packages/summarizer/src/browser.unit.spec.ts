// Browser-safety: the package bundles for the browser platform with no Node
// built-ins (esbuild fails on any `node:` import there), and the bundle runs
// in a bare JavaScript context that has only web APIs (WebCrypto,
// TextEncoder/TextDecoder): no process, Buffer or require.
import { runInNewContext } from 'node:vm';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const entry = fileURLToPath(new URL('./index.ts', import.meta.url));

describe('in a browser', () => {
  it('bundles for the browser and summarises, encodes, hashes and checks with web APIs only', async () => {
    const out = await build({ entryPoints: [entry], bundle: true, platform: 'browser', format: 'iife', globalName: 'bilSummarizer', target: 'es2022', write: false, logLevel: 'silent' });
    const code = out.outputFiles[0]!.text;
    const ids = { requestId: '0190b0a4-2222-7000-8000-000000000001', chatId: '0190b0a4-1111-7000-8000-000000000001', deviceId: '0190b0a4-3333-7000-8000-000000000001' };
    const sandbox = { crypto: globalThis.crypto, TextEncoder, TextDecoder, console, ids, result: undefined as unknown };
    runInNewContext(
      `${code}
      result = (async () => {
        const S = bilSummarizer;
        const t = { ...ids, title: 'Launch', fromSeq: 1, toSeq: 2, messages: [
          { seq: 1, sender: 'Ann', senderUserId: ids.chatId, sentAt: 1, text: 'Bob, can you ship the release by Friday?' },
          { seq: 2, sender: 'Bob', senderUserId: ids.deviceId, sentAt: 2, text: 'Sure, on it.' } ] };
        const bytes = S.encodeTranscript(t);
        const parsed = S.parseTranscript(bytes, ids);
        const summary = S.summarizeExtractive(parsed);
        const hash = await S.transcriptSha256(bytes);
        const plain = { ...ids, transcriptSha256: hash, fromSeq: 1, toSeq: 2, messageCount: 2, excludedCount: 0, ...summary };
        const back = S.parseSummary(S.encodeSummary(plain), { ...ids, transcriptSha256: hash, fromSeq: 1, toSeq: 2 });
        return { env: [typeof process, typeof Buffer, typeof require], context: S.digestContext(ids.requestId, ids.chatId, ids.deviceId), hash, actions: back.actions };
      })();`,
      sandbox,
    );
    const r = (await sandbox.result) as { env: string[]; context: string; hash: string; actions: unknown };
    expect(r.env).toEqual(['undefined', 'undefined', 'undefined']);
    expect(r.context).toBe(`${ids.requestId}:${ids.chatId}:${ids.deviceId}`);
    expect(r.hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.actions).toEqual([{ owner: 'Bob', action: 'Bob, can you ship the release by Friday?' }]);
  });
});
