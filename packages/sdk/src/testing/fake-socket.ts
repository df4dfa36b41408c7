// A WebSocket stand-in for the live layers' unit tests: records what is sent,
// and lets the test push server frames and close it.
import type { WebSocketLike } from '../live.js';

export class FakeSocket implements WebSocketLike {
  readyState = 1;
  sent: Array<Record<string, unknown>> = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  send(data: string): void {
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }
  close(code = 1000, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  push(frame: Record<string, unknown>): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  /** The server's hello, as delivery sends it first. */
  hello(): void {
    this.push({ type: 'hello', protocol: 1, expires_at: Date.now() + 600_000 });
  }
}
