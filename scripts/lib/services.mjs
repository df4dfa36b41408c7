// The services of the system as `npm start` runs them, in start order: entry,
// arguments, environment and readiness URL of each, from the ports it is given
// (scripts/start.mjs and scripts/faults/ both start them from this list), and
// waitReady(), which waits until a started service's /readyz answers 200.
// Only the gateway faces clients: the rest, and every /metrics, /healthz and
// /readyz, listen on loopback unless the environment says otherwise.
//
// WebSockets take the direct path, as behind the Kubernetes ingress: the
// gateway accepts a /v1/ws upgrade and hands the client's socket itself over
// its IPC channel to this (parent) process, which passes it on to delivery
// (relayWsHandoffs); delivery then serves it as its own connection, so no frame
// goes through the gateway. GATEWAY_WS_HANDOFF=proxy keeps the TCP pipe instead.
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
        DELIVERY_WS_HANDOFF: 'ipc',
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
        GATEWAY_WS_HANDOFF: env.GATEWAY_WS_HANDOFF || 'ipc',
      },
      ready: `http://127.0.0.1:${p.GATEWAY_PORT}/readyz`,
    },
  ];
}

/** A service's stdio: stdout and stderr piped, and an IPC channel (the WebSocket handoff's) for the gateway and delivery. */
export function stdioOf(svc) {
  return svc.name === 'gateway' || svc.name === 'delivery' ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
}

const HANDOFF = 'bil.ws-handoff';

/**
 * Passes every socket the gateway child hands over to the delivery child
 * `delivery()` returns now (it may have been restarted); while there is none,
 * answers the client 503 with Retry-After as the gateway's proxy would.
 */
export function relayWsHandoffs(gateway, delivery) {
  gateway.on('message', (msg, handle) => {
    if (msg?.type !== HANDOFF || !handle) return;
    const d = delivery();
    const unavailable = () => {
      const body = JSON.stringify({ error: { code: 'service_unavailable', message: 'live delivery is unavailable, try again', details: { retry_after_seconds: 2 } } });
      handle.on('error', () => handle.destroy());
      handle.end(
        `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nRetry-After: 2\r\nConnection: close\r\n\r\n${body}`,
      );
    };
    if (!d || !d.connected || d.exitCode !== null || d.signalCode !== null) return unavailable();
    d.send(msg, handle, {}, (err) => {
      if (err) unavailable();
    });
  });
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
