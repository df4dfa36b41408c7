// A bounded FIFO of work: at most `limit` run at once, the rest wait their
// turn in arrival order. Delivery's calls to chat on behalf of sockets (catch-up
// pages and gap fills) go through one of these per node, so a reconnect storm
// of thousands of devices becomes a queue served at chat's pace, not thousands
// of concurrent calls whose deadlines expire (issue 18). Waiting in the queue
// never fails anything: only the call itself has a deadline.
export class Slots {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  /** Work waiting for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running < this.limit) this.running++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next in line (running stays the same).
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
