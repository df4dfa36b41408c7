// The gRPC server closes client connections after maxConnectionAgeMs (so
// clients re-resolve and reach new replicas) without failing a single call.
import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { credentials, makeGenericClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { GrpcServer, ServiceAuth, callSignal, clientOptions, createLogger } from './index.js';

describe('GrpcServer connection age', () => {
  it('recycles connections past their age while calls keep succeeding', async () => {
    const server = new GrpcServer({ logger: createLogger('grpc-test', 'silent'), maxConnectionAgeMs: 200, auth: new ServiceAuth('test', 'a-test-secret-of-at-least-32-characters') });
    const port = await server.listen('127.0.0.1', 0);
    // A TCP relay in front of the server counts the connections the client opens.
    let connections = 0;
    const sockets: Socket[] = [];
    const relay = createServer((inbound) => {
      connections++;
      const outbound = connect(port, '127.0.0.1');
      sockets.push(inbound, outbound);
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
    });
    const relayPort = await new Promise<number>((resolve) => relay.listen(0, '127.0.0.1', () => resolve((relay.address() as { port: number }).port)));
    const Health = makeGenericClientConstructor(healthService, 'Health');
    const client = new Health(`dns:///127.0.0.1:${relayPort}`, credentials.createInsecure(), clientOptions);
    const check = () =>
      new Promise<string>((resolve, reject) =>
        (client as unknown as { check: (req: object, opts: object, cb: (err: ServiceError | null, res: { status: string }) => void) => void }).check(
          { service: '' },
          { deadline: Date.now() + 5000 },
          (err, res) => (err ? reject(err) : resolve(res.status)),
        ),
      );
    try {
      // 40 calls over more than a second: several connection ages.
      for (let i = 0; i < 40; i++) {
        expect(await check()).toBe('SERVING');
        await new Promise((r) => setTimeout(r, 30));
      }
      expect(connections).toBeGreaterThanOrEqual(3); // about one per 200 ms, none of it visible to the calls
    } finally {
      client.close();
      for (const s of sockets) s.destroy();
      relay.close();
      await server.shutdown(1000);
    }
  });
});

describe('GrpcServer call signal', () => {
  // A unary method of JSON buffers, enough to see what the handler's signal does.
  const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
  const method = (path: string) => ({ path, requestStream: false, responseStream: false, requestSerialize: json.serialize, requestDeserialize: json.deserialize, responseSerialize: json.serialize, responseDeserialize: json.deserialize });
  const definition = { Wait: method('/test.Calls/Wait'), Quick: method('/test.Calls/Quick') };
  type Unary = (req: object, cb: (err: ServiceError | null, res: unknown) => void) => { cancel(): void };

  it('aborts when the caller cancels, and not after an answered call', async () => {
    const auth = new ServiceAuth('test', 'a-test-secret-of-at-least-32-characters');
    const server = new GrpcServer({ logger: createLogger('grpc-test', 'silent'), auth });
    const seen: { wait?: AbortSignal; quick?: AbortSignal } = {};
    let waiting!: () => void;
    const started = new Promise<void>((r) => (waiting = r));
    server.add('test.Calls', definition as never, {
      Wait: async () => {
        const signal = callSignal()!;
        seen.wait = signal;
        waiting();
        await new Promise((r) => signal.addEventListener('abort', r, { once: true }));
        return {};
      },
      Quick: async () => {
        seen.quick = callSignal();
        return { ok: true };
      },
    } as never);
    const port = await server.listen('127.0.0.1', 0);
    const Calls = makeGenericClientConstructor(definition as never, 'Calls');
    const client = new Calls(`127.0.0.1:${port}`, credentials.createInsecure(), auth.clientOptions('test', clientOptions)) as unknown as Record<'Quick' | 'Wait', Unary> & { close(): void };
    try {
      expect(await new Promise((resolve, reject) => client.Quick({}, (err, res) => (err ? reject(err) : resolve(res))))).toEqual({ ok: true });
      await new Promise((r) => setTimeout(r, 50)); // grpc-js reports 'cancelled' on the next tick after answering
      expect(seen.quick?.aborted).toBe(false);
      const call = client.Wait({}, () => undefined);
      await started;
      expect(seen.wait?.aborted).toBe(false);
      call.cancel();
      await expect.poll(() => seen.wait?.aborted, { timeout: 5000 }).toBe(true);
    } finally {
      client.close();
      await server.shutdown(1000);
    }
  });
});
