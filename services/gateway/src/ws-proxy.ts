// Forwards WebSocket upgrades of `/v1/ws` to a delivery node, so clients use
// the gateway's port (in Kubernetes the ingress routes /v1/ws to delivery
// directly). The upgrade request is passed on byte for byte (delivery checks
// the token and answers 101 or 401 itself), then both sockets are piped as raw
// TCP: no WebSocket frame is parsed or re-encoded here, each chunk is handed
// from one socket to the other (what an L7 ingress does). Nagle is off on both
// sides, so a small frame is forwarded at once instead of waiting for the
// previous one's ACK. Several nodes may be listed; each upgrade goes to the
// next one, and a node that refuses the TCP connection is skipped.
//
// With a `handoff` (npm start: GATEWAY_WS_HANDOFF=ipc), nothing is piped: the
// upgrade request's bytes and the client's socket itself (its file
// descriptor) are handed over IPC to the parent process, which passes them to
// delivery (scripts/lib/services.mjs). Delivery then reads the request from
// the socket as if the client had connected to it directly, as behind the
// Kubernetes ingress: the gateway costs nothing per frame and holds no socket.
import { Socket, connect } from 'node:net';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { OUTAGE_RETRY_AFTER_SECONDS, type Logger } from '@bil/runtime';

export const WS_PATH = '/v1/ws';

export interface WsProxyOptions {
  /** Delivery node URLs, comma-separated: `ws://host:port[,ws://host:port…]`. */
  targets: string;
  logger: Logger;
  /** How many proxies in front of the gateway append to X-Forwarded-For (as the REST API). */
  trustProxyHops?: number;
  connectTimeoutMs?: number;
  /**
   * Hands the client's socket and the upgrade request (bytes to be read first)
   * to delivery instead of proxying; false when it could not (then 503).
   */
  handoff?: (socket: Socket, request: Buffer) => boolean;
}

export function parseWsTargets(targets: string): Array<{ host: string; port: number }> {
  return targets
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean)
    .map((t) => {
      const u = new URL(t);
      if (u.protocol !== 'ws:') throw new Error(`DELIVERY_WS_URL: ${t} must use ws:`);
      return { host: u.hostname, port: Number(u.port || 80) };
    });
}

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const details = status === 503 ? { retry_after_seconds: OUTAGE_RETRY_AFTER_SECONDS } : {};
  const body = JSON.stringify({ error: { code, message, details } });
  socket.end(
    `HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : 'Service Unavailable'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${status === 503 ? `Retry-After: ${OUTAGE_RETRY_AFTER_SECONDS}\r\n` : ''}Connection: close\r\n\r\n${body}`,
  );
}

/** Attaches the proxy to the gateway's HTTP server; returns a function that detaches it. */
export function attachWsProxy(server: Server, opts: WsProxyOptions): () => void {
  const targets = parseWsTargets(opts.targets);
  let next = 0;
  const open = new Set<Socket>();

  const onUpgrade = (req: IncomingMessage, client: Duplex, head: Buffer) => {
    client.on('error', () => client.destroy());
    if ((req.url ?? '').split('?')[0] !== WS_PATH || targets.length === 0) {
      refuse(client, 404, 'not_found', `no WebSocket endpoint ${(req.url ?? '').slice(0, 100)}`);
      return;
    }
    // The client address as the REST API sees it, appended for delivery's logs.
    const forwarded = req.headers['x-forwarded-for'];
    const chain = opts.trustProxyHops && typeof forwarded === 'string' ? `${forwarded}, ` : '';
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (name.toLowerCase() === 'x-forwarded-for') continue;
      lines.push(`${name}: ${req.rawHeaders[i + 1]}`);
    }
    lines.push(`X-Forwarded-For: ${chain}${req.socket.remoteAddress ?? ''}`);
    const request = `${lines.join('\r\n')}\r\n\r\n`;

    if (opts.handoff) {
      if (client instanceof Socket && opts.handoff(client, head.length > 0 ? Buffer.concat([Buffer.from(request), head]) : Buffer.from(request))) return;
      refuse(client, 503, 'service_unavailable', 'live delivery is unavailable, try again');
      return;
    }

    const attempt = (tries: number) => {
      const target = targets[next++ % targets.length]!;
      const upstream = connect({ host: target.host, port: target.port });
      upstream.setTimeout(opts.connectTimeoutMs ?? 3000);
      upstream.once('timeout', () => upstream.destroy(new Error('connect timeout')));
      upstream.once('connect', () => {
        upstream.setTimeout(0);
        upstream.setNoDelay(true);
        if (client instanceof Socket) client.setNoDelay(true);
        open.add(upstream);
        upstream.write(request);
        if (head.length > 0) upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
        upstream.on('error', () => client.destroy());
        upstream.once('close', () => {
          open.delete(upstream);
          client.destroy();
        });
        client.once('close', () => upstream.destroy());
      });
      upstream.once('error', (err) => {
        if (open.has(upstream)) return;
        if (tries + 1 < targets.length) return attempt(tries + 1);
        opts.logger.warn({ err: err.message }, 'no delivery node reachable for a WebSocket upgrade');
        refuse(client, 503, 'service_unavailable', 'live delivery is unavailable, try again');
      });
    };
    attempt(0);
  };

  server.on('upgrade', onUpgrade);
  return () => {
    server.off('upgrade', onUpgrade);
    for (const s of open) s.destroy();
  };
}

/** The IPC message that carries a handed-off socket (scripts/lib/services.mjs relays it to delivery). */
export const WS_HANDOFF_MESSAGE = 'bil.ws-handoff';

/**
 * The handoff of npm start: the socket goes to the parent process over this
 * process's IPC channel with the request bytes (base64); the parent passes
 * both to delivery. Fails at start when there is no IPC channel.
 */
export function ipcHandoff(logger: Logger): NonNullable<WsProxyOptions['handoff']> {
  if (!process.send) throw new Error('GATEWAY_WS_HANDOFF=ipc needs an IPC channel to the parent process (npm start sets one up)');
  return (socket, request) => {
    if (!process.connected) return false;
    socket.setNoDelay(true);
    process.send!({ type: WS_HANDOFF_MESSAGE, request: request.toString('base64') }, socket, {}, (err) => {
      if (!err) return;
      logger.warn({ err: err.message }, 'a WebSocket handoff to delivery failed');
      socket.destroy();
    });
    return true;
  };
}
