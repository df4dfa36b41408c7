// The services of the system as `npm start` runs them, in start order: entry,
// arguments, environment and readiness URL of each, from the ports it is given
// (scripts/start.mjs and scripts/faults/ both start them from this list), and
// waitReady(), which waits until a started service's /readyz answers 200.
// Only the gateway faces clients: the rest, and every /metrics, /healthz and
// /readyz, listen on loopback unless the environment says otherwise.
export const LOOPBACK = '127.0.0.1';

/**
 * @param {Record<string, string | undefined>} env the environment (its *_HOST variables override loopback)
 * @param {{ GATEWAY_PORT: string, IDENTITY_GRPC_PORT: string, IDENTITY_METRICS_PORT: string, DELIVERY_WS_PORT: string, DELIVERY_METRICS_PORT: string, CHAT_GRPC_PORT: string, CHAT_METRICS_PORT: string, DIGEST_GRPC_PORT: string, DIGEST_METRICS_PORT: string, DIGEST_WORKER_METRICS_PORT: string }} p the ports
 * @param {string} jwtKey identity's JWT signing key (PEM)
 */
export function systemServices(env, p, jwtKey) {
  return [
    {
      name: 'identity',
      entry: 'services/identity/dist/main.js',
      env: { IDENTITY_GRPC_HOST: env.IDENTITY_GRPC_HOST || LOOPBACK, IDENTITY_GRPC_PORT: p.IDENTITY_GRPC_PORT, IDENTITY_METRICS_PORT: p.IDENTITY_METRICS_PORT, IDENTITY_JWT_PRIVATE_KEY: jwtKey },
      ready: `http://127.0.0.1:${p.IDENTITY_METRICS_PORT}/readyz`,
    },
    {
      // After identity (it consumes identity.v1.* into its device directory), before the gateway.
      name: 'chat',
      entry: 'services/chat/dist/main.js',
      env: { CHAT_GRPC_HOST: env.CHAT_GRPC_HOST || LOOPBACK, CHAT_GRPC_PORT: p.CHAT_GRPC_PORT, CHAT_METRICS_PORT: p.CHAT_METRICS_PORT },
      ready: `http://127.0.0.1:${p.CHAT_METRICS_PORT}/readyz`,
    },
    {
      // After chat (its local views follow identity.v1.* and chat.v1.*), before the gateway; migrates and issues the first digest key.
      name: 'digest',
      entry: 'services/digest/dist/main.js',
      args: [],
      env: { DIGEST_GRPC_HOST: env.DIGEST_GRPC_HOST || LOOPBACK, DIGEST_GRPC_PORT: p.DIGEST_GRPC_PORT, DIGEST_METRICS_PORT: p.DIGEST_METRICS_PORT, DIGEST_WORKER_METRICS_PORT: p.DIGEST_WORKER_METRICS_PORT },
      ready: `http://127.0.0.1:${p.DIGEST_METRICS_PORT}/readyz`,
    },
    {
      // After the digest API (workers never migrate): summarises queued digest requests (built-in summariser unless OPENAI_API_KEY is set).
      name: 'digest-worker',
      entry: 'services/digest/dist/main.js',
      args: ['worker'],
      env: { DIGEST_METRICS_PORT: p.DIGEST_METRICS_PORT, DIGEST_WORKER_METRICS_PORT: p.DIGEST_WORKER_METRICS_PORT },
      ready: `http://127.0.0.1:${p.DIGEST_WORKER_METRICS_PORT}/readyz`,
    },
    {
      // After chat (catch-up reads it), before the gateway (which proxies /v1/ws to it).
      name: 'delivery',
      entry: 'services/delivery/dist/main.js',
      env: {
        DELIVERY_HOST: env.DELIVERY_HOST || LOOPBACK,
        DELIVERY_WS_PORT: p.DELIVERY_WS_PORT,
        DELIVERY_METRICS_PORT: p.DELIVERY_METRICS_PORT,
        IDENTITY_GRPC_URL: `127.0.0.1:${p.IDENTITY_GRPC_PORT}`,
        CHAT_GRPC_URL: `127.0.0.1:${p.CHAT_GRPC_PORT}`,
      },
      ready: `http://127.0.0.1:${p.DELIVERY_METRICS_PORT}/readyz`,
    },
    {
      name: 'gateway',
      entry: 'services/gateway/dist/main.js',
      env: {
        BIL_GATEWAY_PORT: p.GATEWAY_PORT,
        IDENTITY_GRPC_URL: `127.0.0.1:${p.IDENTITY_GRPC_PORT}`,
        CHAT_GRPC_URL: `127.0.0.1:${p.CHAT_GRPC_PORT}`,
        DIGEST_GRPC_URL: `127.0.0.1:${p.DIGEST_GRPC_PORT}`,
        DELIVERY_WS_URL: `ws://127.0.0.1:${p.DELIVERY_WS_PORT}`,
      },
      ready: `http://127.0.0.1:${p.GATEWAY_PORT}/readyz`,
    },
  ];
}

/** Ready means the service's /readyz answers 200 (independent of LOG_LEVEL); fails if the child exits first or `timeoutMs` passes. */
export async function waitReady(svc, child, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${svc.name} exited before it was ready (code ${child.exitCode})`);
    try {
      const res = await fetch(svc.ready, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${svc.name} was not ready within ${timeoutMs / 1000} s (${svc.ready})`);
}
