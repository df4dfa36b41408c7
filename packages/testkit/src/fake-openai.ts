// A real OpenAI-compatible HTTP server on 127.0.0.1 (node:http, a real
// socket): POST /v1/chat/completions answers in the OpenAI format, or with
// 429, 500, a slow answer or a malformed one, as a test scripts it. It checks
// what the SDK sends (auth, model, messages) and records every request. Used
// by the digest worker's tests and by clients' bring-your-own-model tests.
// With `corsOrigin` it answers a browser page of that origin as the OpenAI API
// does (the preflight, and Access-Control-Allow-Origin on every answer).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behaviour =
  | { kind: 'ok'; content?: string }
  | { kind: 'status'; status: number }
  | { kind: 'slow'; ms: number }
  | { kind: 'hang' }
  | { kind: 'malformed' };

export interface SeenRequest {
  authorization: string;
  model: string;
  messages: Array<{ role: string; content: string }>;
  responseFormat: unknown;
}

export const MODEL_SUMMARY = {
  topic: 'Website launch on Thursday',
  key_points: ['The Safari payment bug blocks the launch', 'Ads budget is 5000 euros'],
  actions: [{ owner: 'Bob Chen', action: 'Fix the Safari checkout bug by Wednesday' }],
  language: 'en',
};

export class FakeOpenAI {
  readonly seen: SeenRequest[] = [];
  /** Behaviours for the next requests, in order; when empty, `fallback`. */
  readonly script: Behaviour[] = [];
  fallback: Behaviour = { kind: 'ok' };
  /** Resolves the next time a request arrives (the crash test waits on it). */
  onRequest?: () => void;
  private server?: Server;
  private readonly hanging = new Set<() => void>();
  url = '';
  /** The page origin allowed to call it from a browser (CORS); unset: no CORS headers. */
  corsOrigin?: string;

  constructor(readonly apiKey = 'test-key', readonly model = 'test-model') {}

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        ({ status, body, headers }) => {
          if (status === 0) return; // hang: never answer
          const cors: Record<string, string> = this.corsOrigin ? { 'access-control-allow-origin': this.corsOrigin, vary: 'origin' } : {};
          res.writeHead(status, { 'content-type': 'application/json', ...cors, ...headers });
          res.end(body);
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/v1`;
    return this;
  }

  async stop(): Promise<void> {
    for (const release of this.hanging) release();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => this.server?.close(() => r()) ?? r());
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: string; headers?: Record<string, string> }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.method === 'OPTIONS' && this.corsOrigin) {
      return {
        status: 204,
        body: '',
        headers: {
          'access-control-allow-methods': 'POST',
          'access-control-allow-headers': String(req.headers['access-control-request-headers'] ?? 'authorization, content-type'),
          'access-control-max-age': '600',
        },
      };
    }
    if (req.method !== 'POST' || req.url !== '/v1/chat/completions') return { status: 404, body: '{"error":{"message":"not found"}}' };
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model: string; messages: SeenRequest['messages']; response_format?: unknown };
    this.seen.push({ authorization: req.headers.authorization ?? '', model: body.model, messages: body.messages, responseFormat: body.response_format });
    this.onRequest?.();
    if (req.headers.authorization !== `Bearer ${this.apiKey}`) return { status: 401, body: '{"error":{"message":"bad key","type":"invalid_request_error"}}' };
    const b = this.script.shift() ?? this.fallback;
    switch (b.kind) {
      case 'status':
        return { status: b.status, body: JSON.stringify({ error: { message: `fake ${b.status}`, type: 'server_error' } }), headers: { 'retry-after-ms': '10' } };
      case 'slow':
        await new Promise((r) => setTimeout(r, b.ms));
        return this.completion(JSON.stringify(MODEL_SUMMARY));
      case 'hang':
        await new Promise<void>((r) => this.hanging.add(r));
        return { status: 0, body: '' };
      case 'malformed':
        return this.completion('Sorry, here is a summary in prose instead of JSON.');
      case 'ok':
        return this.completion(b.content ?? JSON.stringify(MODEL_SUMMARY));
    }
  }

  private completion(content: string) {
    return {
      status: 200,
      body: JSON.stringify({
        id: `chatcmpl-${this.seen.length}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: this.model,
        choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 },
      }),
    };
  }
}
