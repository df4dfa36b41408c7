// Token verification cost, in process: N sequential verifies of one valid
// token (revocation check stubbed). Usage: node bench/verify.bench.mjs [N]
import { generateKeyPair, exportJWK, SignJWT, calculateJwkThumbprint } from 'jose';
import { AccessTokenVerifier, JwksCache } from '@bil/runtime';

const N = Number(process.argv[2] ?? 20000);
const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
const jwk = await exportJWK(publicKey);
const kid = await calculateJwkThumbprint(jwk);
const token = await new SignJWT({ did: 'device-1', sid: 'session-1' })
  .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
  .setSubject('user-1').setIssuer('bil-identity').setAudience('bil-api')
  .setIssuedAt().setExpirationTime('10m').sign(privateKey);
const jwks = new JwksCache({ fetch: async () => JSON.stringify({ keys: [{ ...jwk, kid, alg: 'EdDSA' }] }), minRefreshIntervalMs: 5000 });
const verifier = new AccessTokenVerifier({ jwks, revocations: { isRevoked: async () => false } });
for (let i = 0; i < 2000; i++) await verifier.verify(token);
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (let i = 0; i < N; i++) await verifier.verify(token);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const cpu = process.cpuUsage(cpu0);
console.log(`verify: ${N} in ${ms.toFixed(0)} ms = ${((ms * 1000) / N).toFixed(1)} µs each (CPU ${(((cpu.user + cpu.system) / N)).toFixed(1)} µs each)`);
