// The gateway's settings, read from the environment once at start. A bad value
// stops the process with one line per problem (runtime loadConfig).
import { ConfigError, bool, checkServiceAuthConfig, commonConfig, int, loadConfig, oneOf, port, serviceAuthConfig, str, type ConfigOf } from '@bil/runtime';
import { parseModelOrigins } from './web-app.js';

export const gatewayConfigSchema = {
  NODE_ENV: commonConfig.NODE_ENV,
  LOG_LEVEL: commonConfig.LOG_LEVEL,
  REDIS_URL: commonConfig.REDIS_URL,
  REDIS_PREFIX: commonConfig.REDIS_PREFIX,
  METRICS_HOST: commonConfig.METRICS_HOST,
  ...serviceAuthConfig,
  BIL_GATEWAY_PORT: port('the TCP port the public REST API listens on', 8080),
  GATEWAY_HOST: str('the address the public REST API binds to', '0.0.0.0'),
  GATEWAY_METRICS_PORT: port('the port of the internal /metrics, /healthz, /readyz server; 0 turns it off', 9100),
  GATEWAY_TRUST_PROXY: bool('whether to take the client address from X-Forwarded-For (only behind a trusted proxy)', false),
  GATEWAY_TRUST_PROXY_HOPS: int(
    'with GATEWAY_TRUST_PROXY, how many proxies in front of the gateway append to X-Forwarded-For',
    1,
    1,
    10,
  ),
  GATEWAY_BODY_LIMIT_BYTES: int('the largest accepted request body in bytes', 64 * 1024, 1024, 16 * 1024 * 1024),
  GATEWAY_MESSAGE_BODY_LIMIT_BYTES: int(
    'the largest body of POST /v1/chats/{chat_id}/messages in bytes (an envelope is up to 256 KiB of base64url)',
    512 * 1024,
    1024,
    16 * 1024 * 1024,
  ),
  GATEWAY_EPOCH_BODY_LIMIT_BYTES: int(
    'the largest body of the routes carrying a group epoch record and its wrapped keys, in bytes (they grow with the group)',
    8 * 1024 * 1024,
    1024,
    64 * 1024 * 1024,
  ),
  PUSH_VAPID_PUBLIC_KEY: str('the VAPID public key (uncompressed P-256 point, base64url) served at GET /v1/push/vapid-key; empty: push is off (docs/push.md)', '', {
    pattern: /^$|^[A-Za-z0-9_-]{87}$/,
  }),
  IDENTITY_GRPC_URL: str('the identity service gRPC address, host:port', '127.0.0.1:50051', {
    pattern: /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$|^dns:.+$/,
  }),
  IDENTITY_TIMEOUT_MS: int('the deadline of each call to the identity service in milliseconds', 5000, 100, 60_000),
  CHAT_GRPC_URL: str('the chat service gRPC address, host:port', '127.0.0.1:50052', {
    pattern: /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$|^dns:.+$/,
  }),
  DIGEST_GRPC_URL: str('the digest service gRPC address, host:port', '127.0.0.1:50054', {
    pattern: /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$|^dns:.+$/,
  }),
  DIGEST_TIMEOUT_MS: int('the deadline of each call to the digest service in milliseconds', 5000, 100, 60_000),
  GATEWAY_DIGEST_BODY_LIMIT_BYTES: int(
    'the largest body of POST /v1/digests in bytes (sealed transcripts of up to 256 KiB each)',
    8 * 1024 * 1024,
    1024,
    64 * 1024 * 1024,
  ),
  CHAT_TIMEOUT_MS: int('the deadline of each call to the chat service in milliseconds', 5000, 100, 60_000),
  DELIVERY_WS_URL: str('the delivery node(s) the /v1/ws upgrade is proxied to, ws://host:port, comma-separated', 'ws://127.0.0.1:8090', {
    pattern: /^ws:\/\/[A-Za-z0-9.-]+:\d{1,5}(,ws:\/\/[A-Za-z0-9.-]+:\d{1,5})*$/,
  }),
  GATEWAY_WS_HANDOFF: oneOf(
    'how /v1/ws upgrades reach delivery: proxy (a TCP pipe through the gateway) or ipc (the socket itself is handed to the parent process, which passes it to delivery; npm start)',
    ['proxy', 'ipc'] as const,
    'proxy',
  ),
  JWKS_REFRESH_MIN_INTERVAL_MS: int(
    'the shortest time between two JWKS fetches triggered by an unknown key id, in milliseconds',
    5000,
    0,
    3_600_000,
  ),
  RATE_LIMIT_AUTH_PER_IP: int('sign-in and registration attempts allowed per client address per window', 30, 1),
  RATE_LIMIT_AUTH_PER_USERNAME: int('sign-in and registration attempts allowed per username from one address per window (ten times that from all addresses together)', 10, 1),
  RATE_LIMIT_USER_LOOKUPS_PER_USER: int('GET /v1/users lookups allowed per account per window', 60, 1),
  GATEWAY_HEADERS_TIMEOUT_MS: int('time a client has to send the complete request headers, in milliseconds (slowloris)', 10_000, 1000, 300_000),
  GATEWAY_REQUEST_TIMEOUT_MS: int('time a client has to send the complete request, body included, in milliseconds', 60_000, 1000, 600_000),
  GATEWAY_MAX_CONNECTIONS_PER_ADDRESS: int('open connections allowed per client TCP address (a proxy in front is one address); 0 for no cap', 512, 0, 1_000_000),
  GATEWAY_WEB_DIR: str('the directory of the built web client served at / (its index.html); empty: apps/web/dist of this repository', ''),
  GATEWAY_WEB_MODEL_ORIGINS: str(
    "comma-separated origins (https, or http on loopback) of OpenAI-compatible endpoints the web client may call for a digest with the person's own model; added to the page's connect-src; empty: that mode is not offered",
    '',
  ),
  RATE_LIMIT_WINDOW_SECONDS: int('the rate-limit window in seconds', 60, 1, 86_400),
};

export type GatewayConfig = ConfigOf<typeof gatewayConfigSchema>;

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const config = loadConfig(gatewayConfigSchema, env);
  checkServiceAuthConfig(config);
  const { problems } = parseModelOrigins(config.GATEWAY_WEB_MODEL_ORIGINS);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
