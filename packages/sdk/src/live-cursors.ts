// Where a live connection keeps the device's position per chat (live.ts).

/** Where the device's position per chat is kept (the key store, a file, memory). */
export interface CursorStore {
  load(): Promise<Record<string, number>>;
  save(chatId: string, seq: number): Promise<void>;
}

/** Cursors in memory (tests, short-lived tools). */
export class MemoryCursorStore implements CursorStore {
  readonly cursors: Record<string, number> = {};
  async load(): Promise<Record<string, number>> {
    return { ...this.cursors };
  }
  async save(chatId: string, seq: number): Promise<void> {
    this.cursors[chatId] = Math.max(this.cursors[chatId] ?? 0, seq);
  }
}
