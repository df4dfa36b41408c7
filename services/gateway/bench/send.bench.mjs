// Gateway cost per send, the gateway alone: POST /v1/chats/{id}/messages with a
// 3 KB envelope, a real token check (Ed25519, revocation MGET on the local
// Redis), body parsing, schema validation and the gRPC-facing mapping, with
// chat stubbed in process (answers at once), so the figure is the gateway's own
// CPU. A forked client process keeps CONCURRENCY requests in flight for
// SECONDS. Prints requests/s and the gateway process' CPU per request.
//   node bench/send.bench.mjs                       (BENCH_SECONDS=10 BENCH_CONCURRENCY=32)
//   BENCH_ALS=1 node bench/send.bench.mjs           (enters an AsyncLocalStorage per request, as before issue 18)
//   node --cpu-prof --cpu-prof-dir=/tmp/gw-prof bench/send.bench.mjs
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import { request, Agent } from 'node:http';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);

if (process.argv[2] === 'client') {
  const { port, token, body, path } = JSON.parse(process.argv[3]);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let done = 0;
  let failed = 0;
  const end = Date.now() + SECONDS * 1000;
  const one = () =>
    new Promise((resolve) => {
      const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          if (res.statusCode !== 201 && failed === 0) console.error(res.statusCode, text.slice(0, 300));
          if (res.statusCode === 201) done++;
          else failed++;
          resolve();
        });
      });
      req.on('error', () => (failed++, resolve()));
      req.end(body);
    });
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < end) await one();
  }));
  process.send({ done, failed });
  process.exit(0);
}

const { generateKeyPair, exportJWK, SignJWT, calculateJwkThumbprint } = await import('jose');
const { RevocationList, connectRedis, createLogger } = await import('@bil/runtime');
const { buildApp } = await import('../dist/app.js');
const { AccessTokenVerifier, JwksCache } = await import('../dist/auth.js');

const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
const jwk = await exportJWK(publicKey);
const kid = await calculateJwkThumbprint(jwk);
const userId = randomUUID();
const deviceId = randomUUID();
const peer = randomUUID();
const chatId = randomUUID();
const token = await new SignJWT({ did: deviceId, sid: randomUUID() })
  .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
  .setSubject(userId).setIssuer('bil-identity').setAudience('bil-api')
  .setIssuedAt().setExpirationTime('10m').sign(privateKey);
const jwksText = JSON.stringify({ keys: [{ ...jwk, kid, alg: 'EdDSA', use: 'sig' }] });
const redis = connectRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', `gwbench-${process.pid}:`);
let seq = 0;
const chat = { sendMessage: async () => ({ seq: String(++seq), createdAt: new Date().toISOString(), duplicate: false }) };
const identity = { getJwks: async () => jwksText };
const als = process.env.BENCH_ALS === '1' ? new AsyncLocalStorage() : undefined;
const app = await buildApp({
  logger: createLogger('gwbench', 'warn'),
  identity,
  chat,
  verifier: new AccessTokenVerifier({ jwks: new JwksCache({ fetch: identity.getJwks, minRefreshIntervalMs: 5000 }), revocations: new RevocationList(redis, 1) }),
  limiter: { hit: async () => ({ count: 1, ttlSeconds: 60 }) },
  limits: { perIp: 1e9, perUsername: 1e9 },
  ready: async () => ({}),
  bodyLimitBytes: 64 * 1024,
  bodyLimits: { message: 512 * 1024, epoch: 8 * 1024 * 1024 },
  trustProxyHops: 0,
});
await app.listen({ host: '127.0.0.1', port: 0 });
if (als) app.server.prependListener('request', () => als.enterWith({ correlationId: randomUUID() }));
const port = app.server.address().port;

const b64 = (n) => Buffer.alloc(n, 7).toString('base64url');
const messageId = '01900000-0000-7000-8000-000000000000';
const body = JSON.stringify({
  message_id: messageId,
  envelope: {
    header: { v: 2, suite: 'aes-256-gcm', chat_id: chatId, message_id: messageId, sender_user_id: userId, sender_device_id: deviceId, scheme: 'direct', epoch: 0, epoch_hash: '', recipient_user_id: peer, counter: 1, timestamp: Date.now(), nonce: b64(12), commitment: b64(32) },
    ciphertext: b64(2300),
    signature: b64(64),
  },
  wrapped_keys: [
    { device_id: deviceId, wrapped_key: b64(384) },
    { device_id: randomUUID(), wrapped_key: b64(384) },
  ],
});
const client = fork(new URL(import.meta.url).pathname, ['client', JSON.stringify({ port, token, body, path: `/v1/chats/${chatId}/messages` })]);
const cpu0 = process.cpuUsage();
const t0 = Date.now();
const result = await new Promise((resolve) => client.once('message', resolve));
const seconds = (Date.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
console.log(`body ${body.length} bytes; ALS ${als ? 'on' : 'off'}; ${result.done} sends (${result.failed} failed) in ${seconds.toFixed(1)} s = ${Math.round(result.done / seconds)}/s; gateway CPU ${((cpu.user + cpu.system) / result.done).toFixed(0)} µs per send`);
await app.close();
await redis.quit();
