// A fixed-window counter for one socket's frames of one kind (issue 14 item 8:
// typing). `hit` says whether this frame may pass and whether it is the first
// refused one of the window (the only one answered, so a flood gets one error
// frame per window, not one per frame).
export class WindowLimit {
  private start = 0;
  private count = 0;

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  hit(now = Date.now()): { allowed: boolean; firstRefused: boolean; retryAfterMs: number } {
    if (now - this.start >= this.windowMs) {
      this.start = now;
      this.count = 0;
    }
    this.count++;
    const allowed = this.count <= this.limit;
    return { allowed, firstRefused: this.count === this.limit + 1, retryAfterMs: allowed ? 0 : this.windowMs - (now - this.start) };
  }
}
