// A GrpcServer refuses every call without a valid service token before any
// handler runs (UNAUTHENTICATED, code service_unauthenticated), answers health
// checks to anyone, and a client whose token is refused reports the backend
// as unavailable, never as the end user's 401.
import { describe, expect, it } from 'vitest';
import { credentials, makeGenericClientConstructor, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { GrpcServer, SERVICE_TOKEN_HEADER, ServiceAuth, callUnary, clientOptions, createLogger } from './index.js';

const SECRET = 'the-deployment-secret-0123456789abcdef';

// A one-method service built from the health proto's shapes (no codegen needed).
const echoService = {
  Echo: { ...healthService.Check, path: '/bil.test.v1.EchoService/Echo' },
};

describe('GrpcServer service authentication', () => {
  it('refuses unsigned and wrongly signed calls before the handler; serves signed ones; health stays open', async () => {
    let handled = 0;
    const server = new GrpcServer({ logger: createLogger('auth-test', 'silent'), auth: new ServiceAuth('chat', SECRET) });
    server.add('bil.test.v1.EchoService', echoService as never, {
      Echo: async () => {
        handled++;
        return { status: 'SERVING' };
      },
    } as never);
    const port = await server.listen('127.0.0.1', 0);
    const Echo = makeGenericClientConstructor(echoService as never, 'Echo');
    const Health = makeGenericClientConstructor(healthService, 'Health');
    const address = `127.0.0.1:${port}`;
    const call = (client: Client, method: 'Echo' | 'check', metadata = new Metadata()) =>
      new Promise<{ err: ServiceError | null }>((resolve) =>
        (client as unknown as Record<string, (r: object, m: Metadata, o: object, cb: (e: ServiceError | null) => void) => void>)[method]!(
          { service: '' },
          metadata,
          { deadline: Date.now() + 5000 },
          (err) => resolve({ err }),
        ),
      );
    const bare = new Echo(address, credentials.createInsecure());
    const signed = new Echo(address, credentials.createInsecure(), new ServiceAuth('gateway', SECRET).clientOptions('chat', clientOptions));
    const health = new Health(address, credentials.createInsecure());
    try {
      const refusals: Array<[string, Metadata]> = [];
      refusals.push(['no token', new Metadata()]);
      const md = (token: string) => {
        const m = new Metadata();
        m.set(SERVICE_TOKEN_HEADER, token);
        return m;
      };
      refusals.push(['another secret', md(new ServiceAuth('gateway', 'a-different-secret-0123456789abcdefgh').sign('chat'))]);
      refusals.push(['another audience', md(new ServiceAuth('gateway', SECRET).sign('identity'))]);
      refusals.push(['expired', md(new ServiceAuth('gateway', SECRET).sign('chat', Date.now() - 600_000))]);
      refusals.push(['garbage', md('v1.gateway.chat.1.x')]);
      for (const [what, metadata] of refusals) {
        const { err } = await call(bare, 'Echo', metadata);
        expect(err?.code, what).toBe(status.UNAUTHENTICATED);
        expect(err?.metadata.get('bil-error-code'), what).toEqual(['service_unauthenticated']);
      }
      expect(handled).toBe(0);

      expect((await call(signed, 'Echo')).err).toBeNull();
      expect(handled).toBe(1);
      expect((await call(health, 'check')).err).toBeNull();
    } finally {
      for (const c of [bare, signed, health]) c.close();
      await server.shutdown(1000);
    }
  });

  it('a client refused for its credentials sees service_unavailable (503), not unauthenticated (401)', async () => {
    const server = new GrpcServer({ logger: createLogger('auth-test', 'silent'), auth: new ServiceAuth('chat', SECRET) });
    server.add('bil.test.v1.EchoService', echoService as never, { Echo: async () => ({ status: 'SERVING' }) } as never);
    const port = await server.listen('127.0.0.1', 0);
    const Echo = makeGenericClientConstructor(echoService as never, 'Echo');
    const wrong = new ServiceAuth('gateway', 'a-different-secret-0123456789abcdefgh', undefined, createLogger('auth-test', 'silent'));
    const client = new Echo(`127.0.0.1:${port}`, credentials.createInsecure(), wrong.clientOptions('chat', clientOptions));
    try {
      const err = await callUnary(client, (client as unknown as { Echo: never }).Echo, { service: '' }).then(
        () => undefined,
        (e: unknown) => e as { kind: string; code: string; httpStatus: number },
      );
      expect(err?.kind).toBe('unavailable');
      expect(err?.code).toBe('service_unavailable');
      expect(err?.httpStatus).toBe(503);
    } finally {
      client.close();
      await server.shutdown(1000);
    }
  });
});
