// The delivery service's settings, read from the environment once at start.
// A bad value stops the process with one line per problem (runtime loadConfig).
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ConfigError, checkServiceAuthConfig, commonConfig, serviceAuthConfig, int, loadConfig, oneOf, optionalStr, port, str } from '@bil/runtime';

const GRPC_ADDRESS = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$|^dns:.+$/;

export const deliveryConfigSchema = {
  ...commonConfig,
  ...serviceAuthConfig,
  DELIVERY_HOST: str('the address the WebSocket server binds to', '0.0.0.0'),
  DELIVERY_WS_PORT: port('the TCP port of the WebSocket endpoint /v1/ws', 8090),
  DELIVERY_WS_HANDOFF: oneOf(
    'off, or ipc: also serve client sockets the gateway hands over through the parent process (npm start; scripts/lib/services.mjs)',
    ['off', 'ipc'] as const,
    'off',
  ),
  DELIVERY_METRICS_PORT: port('the port of /metrics, /healthz and /readyz; 0 turns it off', 9103),
  DELIVERY_NODE_ID: optionalStr('this node\'s id in presence and NATS subjects (letters, digits, _ and -); default: host name + random suffix'),
  IDENTITY_GRPC_URL: str('the identity service gRPC address (for GetJwks), host:port', '127.0.0.1:50051', { pattern: GRPC_ADDRESS }),
  CHAT_GRPC_URL: str('the chat service gRPC address (catch-up and membership), host:port', '127.0.0.1:50052', { pattern: GRPC_ADDRESS }),
  CHAT_TIMEOUT_MS: int('the deadline of each call to the chat service in milliseconds', 5000, 100, 60_000),
  JWKS_REFRESH_MIN_INTERVAL_MS: int('the shortest time between two JWKS fetches caused by an unknown key id, ms', 5000, 0, 3_600_000),
  DELIVERY_PRESENCE_TTL_SECONDS: int('how long a presence entry lives without a heartbeat (a dead node\'s entries expire after it)', 30, 5, 3600),
  DELIVERY_HEARTBEAT_MS: int('how often a node refreshes the presence of its sockets, ms (well below the TTL)', 10_000, 500, 600_000),
  DELIVERY_PING_INTERVAL_MS: int('how often a socket is pinged; a socket that missed a pong is dropped, ms', 25_000, 1000, 600_000),
  DELIVERY_MAX_BUFFERED_BYTES: int('bytes queued for one socket past which it is closed as a slow consumer (4008)', 1024 * 1024, 1024, 256 * 1024 * 1024),
  DELIVERY_MAX_PENDING_FRAMES: int('live frames held for one socket while it catches up, past which it is closed (4008)', 5000, 10, 1_000_000),
  DELIVERY_MAX_FRAME_BYTES: int('the largest frame a client may send, bytes (larger: close 1009)', 64 * 1024, 1024, 16 * 1024 * 1024),
  DELIVERY_HEADERS_TIMEOUT_MS: int('time a client has to send the complete upgrade request headers, ms (slowloris)', 10_000, 1000, 300_000),
  DELIVERY_MAX_CONNECTIONS_PER_ADDRESS: int('open connections allowed per TCP peer address; every gateway in front counts as one address, so this is a safety net sized above a gateway\'s sockets (the per-client cap is the gateway\'s); 0 for no cap', 20_000, 0, 1_000_000),
  DELIVERY_SYNC_TIMEOUT_MS: int('how long after the upgrade a client may take to send its sync frame, ms (then close 4009)', 30_000, 100, 600_000),
  DELIVERY_CATCHUP_CONCURRENCY: int('catch-up reads (a page of chats or history) one node has in flight to chat at once; more syncs wait their turn in a FIFO, never closed for waiting', 32, 1, 1024),
  DELIVERY_REORDER_WAIT_MS: int('how long a live frame that arrived ahead of a missing one waits before the gap is fetched from chat, ms', 250, 10, 60_000),
  DELIVERY_REVOCATION_CHECK_MS: int('how often every socket\'s session, device and user are checked against the revocation list, ms', 15_000, 200, 600_000),
  DELIVERY_FANOUT_ACK_WAIT_MS: int('how long an event taken by a node may stay unacknowledged before JetStream gives it to another node, ms', 10_000, 500, 600_000),
  DELIVERY_MEMBERSHIP_TTL_SECONDS: int('how long a chat\'s cached member list lives without an update', 3600, 10, 7 * 86_400),
  PUSH_VAPID_PUBLIC_KEY: optionalStr('the VAPID public key (uncompressed P-256, base64url; the same as the gateway\'s); unset: no pushes (docs/push.md)'),
  PUSH_VAPID_PRIVATE_KEY: optionalStr('the VAPID private key (32 bytes, base64url); required with PUSH_VAPID_PUBLIC_KEY', { secret: true }),
  PUSH_VAPID_SUBJECT: str('the operator contact push services see in the VAPID token: mailto: or https: URL', 'mailto:push@bil.invalid', { pattern: /^(mailto:|https:\/\/)\S+$/ }),
  PUSH_MIN_INTERVAL_MS: int('the shortest time between two pushes to one device, ms; messages in between are collapsed into the next push', 60_000, 100, 86_400_000),
  PUSH_TTL_SECONDS: int('how long a push service keeps an undelivered push (TTL header), seconds', 86_400, 0, 2_419_200),
  PUSH_TIMEOUT_MS: int('the deadline of one request to a push service, ms', 10_000, 100, 120_000),
  PUSH_RETRY_DELAY_MS: int('the pause before the one retry of a push that failed (network, 429, 5xx), ms', 2000, 0, 600_000),
  PUSH_NO_SUBSCRIPTION_CACHE_MS: int('how long a user known to have no push subscription is not asked about again, ms', 60_000, 0, 3_600_000),
  PUSH_SUBSCRIPTION_CACHE_MS: int('how long the push subscriptions of a user who has some are used without asking identity again, ms (forgotten at once when a device is revoked; 0: ask every time)', 10_000, 0, 300_000),
  DELIVERY_ACK_TTL_SECONDS: int('how long a device\'s acknowledged cursors are kept without an ack', 30 * 86_400, 60, 365 * 86_400),
};

export type DeliveryConfig = ReturnType<typeof loadDeliveryConfig> & { nodeId: string };

export function loadDeliveryConfig(env: NodeJS.ProcessEnv = process.env) {
  const config = loadConfig(deliveryConfigSchema, env);
  checkServiceAuthConfig(config);
  const fallback = `${hostname().replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 40)}-${randomBytes(3).toString('hex')}`;
  const nodeId = config.DELIVERY_NODE_ID ?? fallback;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(nodeId)) {
    throw new ConfigError(['DELIVERY_NODE_ID: must be 1 to 64 letters, digits, _ or -']);
  }
  if (Boolean(config.PUSH_VAPID_PUBLIC_KEY) !== Boolean(config.PUSH_VAPID_PRIVATE_KEY)) {
    throw new ConfigError(['PUSH_VAPID_PUBLIC_KEY and PUSH_VAPID_PRIVATE_KEY: set both (push on) or neither (push off)']);
  }
  return { ...config, nodeId };
}
