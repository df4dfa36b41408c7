import { describe, expect, it } from 'vitest';
import type { App } from '../app.js';
import { outageNotes } from './chats.js';

describe('bil send during an outage', () => {
  it('says once that it is retrying (and for how long), and once that the server is back', () => {
    const notes: string[] = [];
    const on = outageNotes({ out: { note: (t: string) => notes.push(t) } } as unknown as Pick<App, 'out'>);
    on({ state: 'online' });
    expect(notes).toEqual([]);
    on({ state: 'unavailable', retryAfterMs: 2000 });
    on({ state: 'unavailable', retryAfterMs: 2000 });
    on({ state: 'offline' });
    expect(notes).toEqual([expect.stringMatching(/unavailable \(503\); retrying for up to 30 s with the same message id/)]);
    on({ state: 'online' });
    expect(notes[1]).toMatch(/back/);
    on({ state: 'offline' });
    expect(notes[2]).toMatch(/does not answer; retrying/);
  });
});
