// The time an application reads: injected, so that tests can fix or move it.
// Pure (no infrastructure); the services' app layers take one and default to
// the system clock.

export interface Clock {
  now(): Date;
}

/** The machine's clock. */
export const systemClock: Clock = { now: () => new Date() };

/** A clock for tests: stands at `start` until set or advanced. */
export class ManualClock implements Clock {
  private at: number;

  constructor(start: Date | string = '2030-01-01T00:00:00.000Z') {
    this.at = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.at);
  }

  set(to: Date | string): void {
    this.at = new Date(to).getTime();
  }

  advance(ms: number): void {
    this.at += ms;
  }
}
