// HashQueue: bounded concurrency and queue, per-account cap, and work dropped
// when the caller's call has gone (the context's abort signal).
import { runWithContext } from '@bil/runtime';
import { describe, expect, it } from 'vitest';
import { HashQueue } from './hash-queue.js';

function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe('HashQueue', () => {
  it('runs at most `concurrency` at once, queues `maxQueued`, refuses the rest with 503 at once', async () => {
    const q = new HashQueue({ concurrency: 1, maxQueued: 2, perAccount: 10 });
    const g = gate();
    let running = 0;
    let peak = 0;
    const work = async () => {
      peak = Math.max(peak, ++running);
      await g.p;
      running--;
      return 'h';
    };
    const accepted = [q.run('a', work), q.run('b', work), q.run('c', work)];
    await expect(q.run('d', work)).rejects.toMatchObject({ kind: 'unavailable', code: 'service_unavailable', details: { retry_after_seconds: 1 } });
    expect(q.stats).toEqual({ running: 1, queued: 2 });
    g.open();
    expect(await Promise.all(accepted)).toEqual(['h', 'h', 'h']);
    expect(peak).toBe(1);
    expect(q.stats).toEqual({ running: 0, queued: 0 });
  });

  it('caps one account at `perAccount` in flight (429), other accounts unaffected, nothing held afterwards', async () => {
    const q = new HashQueue({ concurrency: 1, maxQueued: 10, perAccount: 2 });
    const g = gate();
    const work = () => g.p.then(() => 'h');
    const two = [q.run('victim', work), q.run('victim', work)];
    await expect(q.run('victim', work)).rejects.toMatchObject({ kind: 'rate_limited', details: { retry_after_seconds: 1 } });
    const other = q.run('someone else', work);
    g.open();
    await Promise.all([...two, other]);
    await expect(q.run('victim', async () => 'again')).resolves.toBe('again');
  });

  it('drops a queued hash whose caller has gone, unrun', async () => {
    const q = new HashQueue({ concurrency: 1, maxQueued: 10, perAccount: 10 });
    const g = gate();
    const first = q.run('a', () => g.p.then(() => 'first'));
    const gone = new AbortController();
    let ran = false;
    const late = runWithContext({ signal: gone.signal }, () =>
      q.run('b', async () => {
        ran = true;
        return 'late';
      }),
    );
    expect(q.stats.queued).toBe(1);
    gone.abort();
    await expect(late).rejects.toMatchObject({ kind: 'deadline_exceeded' });
    expect(q.stats.queued).toBe(0);
    g.open();
    expect(await first).toBe('first');
    expect(ran).toBe(false);
  });
});
