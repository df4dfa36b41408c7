// The gateway's HTTP application: Fastify with JSON-only bodies, strict schema
// validation, one error shape, correlation ids, bearer auth, rate limits and
// the generated OpenAPI document. buildApp takes every dependency, so tests
// can start it on port 0 against real or stubbed backends.
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { Histogram } from 'prom-client';
import { AppError, CORRELATION_HEADER, OutageLog, sanitizeCorrelationId, type Logger, type Metrics } from '@bil/runtime';
import { bearerToken, type AccessTokenVerifier } from './auth.js';
import { errorBody, shuttingDown, toHttpError } from './errors.js';
import {
  DEFAULT_JSON_MAX_DEPTH,
  capConnectionsPerAddress,
  clientErrorHandler,
  createHttpServer,
  findBadString,
  scanJsonDepth,
  type HttpTimeouts,
} from './edge.js';
import type { ChatApi } from './chat-client.js';
import type { BlobApi } from './blob-client.js';
import type { DigestApi } from './digest-client.js';
import { digestSharedSchemas } from './digest-schemas.js';
import { chatSharedSchemas } from './chat-schemas.js';
import { blobSharedSchemas } from './blob-schemas.js';
import type { IdentityApi } from './identity-client.js';
import type { WebApp } from './web-app.js';
import type { AuthLimits, RateLimiter } from './rate-limit.js';
import { sharedSchemas } from './schemas.js';
import { inContext, type BodyLimits, type RouteContext } from './routes/context.js';
import { authRoutes } from './routes/auth.js';
import { chatRoutes } from './routes/chats.js';
import { blobRoutes } from './routes/blobs.js';
import { digestRoutes } from './routes/digests.js';
import { deviceRoutes } from './routes/devices.js';
import { meRoutes } from './routes/me.js';
import { opsRoutes } from './routes/ops.js';
import { pushRoutes } from './routes/push.js';
import { userRoutes } from './routes/users.js';

export interface AppDeps {
  logger: Logger;
  identity: IdentityApi;
  chat: ChatApi;
  /** The chat service's BlobService (the /v1/blobs routes answer 503 without it). */
  blob?: BlobApi;
  /** The digest service (the digest routes answer 503 without it). */
  digest?: DigestApi;
  verifier: Pick<AccessTokenVerifier, 'verify'>;
  limiter: Pick<RateLimiter, 'hit'>;
  limits: AuthLimits;
  /** Per dependency: 'ok' or 'down'. */
  ready: () => Promise<Record<string, 'ok' | 'down'>>;
  /** Largest request body of every route but those in `bodyLimits`. */
  bodyLimitBytes: number;
  /** Larger limits of the send-message route and of routes carrying epoch records (default: both `bodyLimitBytes`). */
  bodyLimits?: Partial<BodyLimits>;
  /**
   * How many proxies in front of the gateway append to X-Forwarded-For; 0
   * ignores the header. The client address is the entry that many hops from
   * the right, so a client can't pick its own address by sending the header.
   */
  trustProxyHops: number;
  metrics?: Metrics;
  /** The public base URL shown in the OpenAPI document. */
  publicUrl?: string;
  /** Slowloris defences: header, request and keep-alive timeouts (defaults: 10 s, 60 s, 72 s). */
  timeouts?: Partial<HttpTimeouts>;
  /** Most open connections per client address (TCP peer); 0 turns the cap off. Default 512. */
  maxConnectionsPerAddress?: number;
  /** The VAPID public key browsers subscribe with (PUSH_VAPID_PUBLIC_KEY); absent: push is off. */
  vapidPublicKey?: string | null;
  /** The built web client served at `/` (web-app.ts `openWebApp`); null or absent: the API only. */
  web?: WebApp | null;
}

/** Route option `config.jsonMaxDepth`: the deepest nesting this route's body may have. */
export interface EdgeRouteConfig {
  jsonMaxDepth?: number;
}

/** True when `text` is only JSON whitespace; stops at the first other character. */
function isBlank(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return false;
  }
  return true;
}

export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const timeouts: HttpTimeouts = {
    headersTimeoutMs: deps.timeouts?.headersTimeoutMs ?? 10_000,
    requestTimeoutMs: deps.timeouts?.requestTimeoutMs ?? 60_000,
    keepAliveTimeoutMs: deps.timeouts?.keepAliveTimeoutMs ?? 72_000,
  };
  const app = Fastify({
    serverFactory: (handler) => createHttpServer(handler, timeouts),
    // Node's own refusals (malformed HTTP, 431, 408) in the documented shape.
    clientErrorHandler,
    // Router errors (a path parameter over maxParamLength, a bad URL) go through
    // the one error shape, without echoing the path.
    frameworkErrors: (err, _request, reply) => {
      const h = toHttpError(err);
      void (reply as FastifyReply).code(h.status).headers(h.headers).send(h.body);
    },
    loggerInstance: deps.logger,
    // One access line per request (onResponse below) instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'correlationId' }),
    bodyLimit: deps.bodyLimitBytes,
    trustProxy: deps.trustProxyHops > 0 ? (_address: string, hop: number) => hop < deps.trustProxyHops : false,
    requestIdHeader: false,
    genReqId: (req) => sanitizeCorrelationId(req.headers[CORRELATION_HEADER]) ?? randomUUID(),
    // Requests still arriving while it closes get the 503 of onRequest below (the API's error shape, Retry-After).
    return503OnClosing: false,
    // Strict validation: no type coercion and no silent removal of unknown
    // fields, so a wrong type or an extra field is an error, not a guess.
    // `discriminator` lets POST /v1/chats validate the personal or group shape
    // its `type` names, with errors about that shape only.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false, discriminator: true } },
  }) as unknown as FastifyInstance;

  app.decorateRequest('actor', null);

  // JSON is the only request body type; anything else is 415. An empty body
  // counts as no body (some clients send Content-Type on a bodiless POST).
  // Size is bounded while the body arrives (bodyLimit, per route); depth is
  // checked by a single scan that stops at the first bracket too deep, before
  // JSON.parse (which takes seconds on an 8 MiB `[[[…]]]`).
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (isBlank(text)) {
      done(null, undefined);
      return;
    }
    const maxDepth = (request.routeOptions.config as EdgeRouteConfig | undefined)?.jsonMaxDepth ?? DEFAULT_JSON_MAX_DEPTH;
    const scan = scanJsonDepth(text, maxDepth);
    if (!scan.ok) {
      const message = scan.reason === 'depth' ? `the request body is nested deeper than ${maxDepth} levels` : 'the request body is not valid JSON';
      done(new AppError('invalid_argument', 'invalid_json', message, scan.reason === 'depth' ? { max_depth: maxDepth } : {}), undefined);
      return;
    }
    parseJson(request, text, done);
  });

  // No control characters (NUL included) and no lone surrogates in any string
  // input, body, query or path: refused here with 400 before a schema, a
  // service or PostgreSQL (which refuses NUL with 22021) sees them.
  app.addHook('preValidation', async (request) => {
    for (const [location, value] of [
      ['params', request.params],
      ['querystring', request.query],
      ['body', request.body],
    ] as const) {
      const bad = findBadString(value);
      if (bad) {
        const field = bad.field || location;
        throw new AppError('invalid_argument', 'invalid_characters', `${field}: ${bad.reason}`, { location, field, reason: bad.reason });
      }
    }
  });

  for (const s of [...sharedSchemas, ...chatSharedSchemas, ...blobSharedSchemas, ...digestSharedSchemas]) app.addSchema(structuredClone(s) as unknown as Record<string, unknown>);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'bil-message API',
        version: '1.0.0',
        description:
          'Public REST API of bil-message. Every error is `{"error":{"code","message","details"}}`; see docs/api.md.',
      },
      servers: deps.publicUrl ? [{ url: deps.publicUrl }] : [],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        },
      },
      tags: [
        { name: 'auth', description: 'Accounts, devices and sessions' },
        { name: 'devices', description: "The caller's devices" },
        { name: 'users', description: 'Other users and the key directory' },
        { name: 'me', description: "The caller's account" },
        { name: 'chats', description: 'Chats, members, group epochs, encrypted messages and read state' },
        { name: 'blobs', description: 'Encrypted attachments: upload (resumable) and download of their ciphertext' },
        { name: 'digests', description: 'Unread digests: the digest key, sealed digest requests and their sealed results, per-chat policy' },
        { name: 'push', description: "Web Push: the VAPID key and a device's content-free push subscription" },
        { name: 'ops', description: 'Health and documentation' },
      ],
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  });

  const requestDuration = deps.metrics
    ? new Histogram({
        name: 'bil_http_request_duration_seconds',
        help: 'Gateway HTTP request duration by method, route and status',
        labelNames: ['method', 'route', 'status'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [deps.metrics.registry],
      })
    : undefined;

  // A backend outage is expected to happen and is not a bug: no stack trace,
  // and one line when it starts and one when answers come back, not one per request.
  const outage = new OutageLog(deps.logger, 'a backend (requests answer 503)');
  const LOCAL_ROUTES = new Set(['/healthz', '/readyz', '/v1/openapi.json']);

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header(CORRELATION_HEADER, request.id);
    if (closing) {
      const h = shuttingDown();
      return reply.code(h.status).headers(h.headers).send(h.body);
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    if (outage.failing && reply.statusCode < 400 && !LOCAL_ROUTES.has(route)) outage.ok();
    const seconds = reply.elapsedTime / 1000;
    requestDuration?.observe({ method: request.method, route, status: String(reply.statusCode) }, seconds);
    // Method, route template and status only: no bodies, no query strings, no headers.
    request.log.info(
      { method: request.method, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });

  app.setErrorHandler((err, request, reply) => {
    const h = toHttpError(err);
    if (h.unexpected) {
      const route = request.routeOptions.url;
      if (err instanceof AppError && err.kind !== 'internal') outage.failed(err, { route, code: err.code });
      else request.log.error({ err, route }, 'request failed');
    }
    void reply.code(h.status).headers(h.headers).send(h.body);
  });

  // Only what no route matched reaches the web client (web-app.ts), and never a path under /v1.
  const web = deps.web ?? null;
  app.setNotFoundHandler(async (request, reply) => {
    if (web && (request.method === 'GET' || request.method === 'HEAD') && (await web.serve(request, reply))) return reply;
    const path = (request.url.split('?')[0] ?? '').slice(0, 200);
    return reply.code(404).send(errorBody('not_found', `no route ${request.method} ${path}`));
  });

  const authenticate = async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const token = bearerToken(request.headers.authorization);
    request.actor = await inContext(request, () => deps.verifier.verify(token));
  };

  const ctx: RouteContext = {
    identity: deps.identity,
    chat: deps.chat,
    ...(deps.digest ? { digest: deps.digest } : {}),
    ...(deps.blob ? { blob: deps.blob } : {}),
    bodyLimits: {
      message: deps.bodyLimits?.message ?? deps.bodyLimitBytes,
      epoch: deps.bodyLimits?.epoch ?? deps.bodyLimitBytes,
      digest: deps.bodyLimits?.digest ?? deps.bodyLimits?.epoch ?? deps.bodyLimitBytes,
    },
    authenticate,
    limiter: deps.limiter,
    limits: deps.limits,
    ready: deps.ready,
    vapidPublicKey: deps.vapidPublicKey ?? null,
  };
  authRoutes(app, ctx);
  deviceRoutes(app, ctx);
  userRoutes(app, ctx);
  meRoutes(app, ctx);
  chatRoutes(app, ctx);
  blobRoutes(app, ctx);
  digestRoutes(app, ctx);
  opsRoutes(app, ctx);
  pushRoutes(app, ctx);

  const refusalLogged = new Map<string, number>();
  capConnectionsPerAddress(app.server, {
    perAddress: deps.maxConnectionsPerAddress ?? 512,
    // One line per address per minute at most, not one per refused connection.
    onRefused: (address) => {
      const now = Date.now();
      if ((refusalLogged.get(address) ?? 0) > now - 60_000) return;
      if (refusalLogged.size > 1000) refusalLogged.clear();
      refusalLogged.set(address, now);
      app.log.warn({ address }, 'connections refused: too many from this address');
    },
  });

  await app.ready();
  return app;
}
