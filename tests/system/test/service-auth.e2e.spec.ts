// Issue #14 item 11: internal gRPC trusted whoever called it (chat served any
// user's chats to a caller naming that user in `actor`). Against the real
// identity, chat and digest processes that npm start's script runs: a caller
// without a valid service token is refused with UNAUTHENTICATED and the stable
// code service_unauthenticated (no token, another secret, a token for another
// service, an expired one), a correctly signed call is served, health checks
// stay open, and nothing but the gateway's public port listens beyond loopback.
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { describe, expect, inject, it } from 'vitest';
import { credentials, Metadata, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { makeGenericClientConstructor } from '@grpc/grpc-js';
import { loadChatProto, loadDigestProto, loadIdentityProto } from '@bil/proto';
import { SERVICE_TOKEN_HEADER, ServiceAuth } from '@bil/runtime';
import { BilClient, MemoryKeyStore } from '@bil/sdk/node';

const ports = inject('bilPorts');
const secret = inject('serviceAuthSecret');
const url = inject('bilUrl');
const gateway = new ServiceAuth('gateway', secret);

type Unary = (req: object, md: Metadata, opts: object, cb: (err: ServiceError | null, res?: unknown) => void) => void;

function call(client: Client, method: string, request: object, token?: string): Promise<{ err: ServiceError | null; res?: unknown }> {
  const md = new Metadata();
  if (token !== undefined) md.set(SERVICE_TOKEN_HEADER, token);
  return new Promise((resolve) =>
    (client as unknown as Record<string, Unary>)[method]!.call(client, request, md, { deadline: Date.now() + 10_000 }, (err, res) => resolve({ err, res })),
  );
}

/** A registered user's actor (user, device, session), from the access token the gateway issued. */
async function someActor(): Promise<{ userId: string; deviceId: string; sessionId: string }> {
  const keyStore = new MemoryKeyStore();
  await new BilClient({ baseUrl: url, keyStore }).register({ username: `svcauth_${Date.now().toString(36)}`, password: 'correct horse battery' });
  const claims = JSON.parse(Buffer.from((await keyStore.load())!.tokens!.accessToken.split('.')[1]!, 'base64url').toString()) as Record<string, string>;
  return { userId: claims.sub!, deviceId: claims.did!, sessionId: claims.sid! };
}

describe('internal gRPC under npm start', () => {
  it('identity, chat and digest refuse every caller without a valid service token, serve signed calls, and answer health checks', async () => {
    const actor = await someActor();
    const address = (port: string) => `127.0.0.1:${port}`;
    const targets = [
      { name: 'identity', client: new (loadIdentityProto().bil.identity.v1.IdentityService)(address(ports.IDENTITY_GRPC_PORT), credentials.createInsecure()), method: 'GetJwks', request: {} },
      // The attack: naming a user in `actor` to read their chats.
      { name: 'chat', client: new (loadChatProto().bil.chat.v1.ChatService)(address(ports.CHAT_GRPC_PORT), credentials.createInsecure()), method: 'ListChats', request: { actor, limit: 10 } },
      { name: 'digest', client: new (loadDigestProto().bil.digest.v1.DigestService)(address(ports.DIGEST_GRPC_PORT), credentials.createInsecure()), method: 'GetDigestKey', request: {} },
    ];
    const Health = makeGenericClientConstructor(healthService, 'Health');
    try {
      for (const t of targets) {
        const refused: Array<[string, string | undefined]> = [
          ['no token', undefined],
          ['a token signed with another secret', new ServiceAuth('gateway', 'not-the-deployment-secret-0123456789ab').sign(t.name)],
          ['a token for another service', gateway.sign(t.name === 'chat' ? 'identity' : 'chat')],
          ['an expired token', gateway.sign(t.name, Date.now() - 10 * 60_000)],
          ['a malformed token', 'v1.gateway.chat.99999999999.forged'],
        ];
        for (const [what, token] of refused) {
          const { err } = await call(t.client, t.method, t.request, token);
          expect(err?.code, `${t.name}: ${what}`).toBe(status.UNAUTHENTICATED);
          expect(err?.metadata.get('bil-error-code'), `${t.name}: ${what}`).toEqual(['service_unauthenticated']);
          expect(err?.details, `${t.name}: ${what}`).toBe('service authentication required');
        }
        const ok = await call(t.client, t.method, t.request, gateway.sign(t.name));
        expect(ok.err, `${t.name}: a signed call`).toBeNull();
        const health = new Health(t.client.getChannel().getTarget(), credentials.createInsecure());
        try {
          const h = await call(health, 'check', { service: '' });
          expect(h.err, `${t.name}: health`).toBeNull();
          expect((h.res as { status: string }).status).toBe('SERVING');
        } finally {
          health.close();
        }
      }
    } finally {
      for (const t of targets) t.client.close();
    }
  });

  it('binds identity, chat, digest, delivery and every metrics port to loopback; the gateway stays reachable on every address', async () => {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
    if (!external) return; // a machine with loopback only: nothing to reach from outside
    const reachable = (port: string) =>
      new Promise<boolean>((resolve) => {
        const s = connect(Number(port), external);
        s.once('connect', () => (s.destroy(), resolve(true)));
        s.once('error', () => resolve(false));
        s.setTimeout(3000, () => (s.destroy(), resolve(false)));
      });
    expect(await reachable(ports.BIL_GATEWAY_PORT), `gateway on ${external}`).toBe(true);
    const internal = ['IDENTITY_GRPC_PORT', 'CHAT_GRPC_PORT', 'DIGEST_GRPC_PORT', 'DELIVERY_WS_PORT'] as const;
    const metrics = ['GATEWAY_METRICS_PORT', 'IDENTITY_METRICS_PORT', 'CHAT_METRICS_PORT', 'DIGEST_METRICS_PORT', 'DIGEST_WORKER_METRICS_PORT', 'DELIVERY_METRICS_PORT'] as const;
    for (const key of [...internal, ...metrics]) {
      expect(await reachable(ports[key]), `${key} on ${external}`).toBe(false);
    }
  });
});
