// Service-to-service authentication on the internal gRPC API (docs/architecture.md,
// "Service-to-service authentication"). Every call carries a short-lived token
// in the `x-bil-service-token` metadata entry:
//
//   v1.<caller>.<audience>.<expires, unix seconds>.<HMAC-SHA256, base64url>
//
// signed with a key derived (HKDF-SHA256, RFC 5869) from the deployment's
// SERVICE_AUTH_SECRET. A token names the service it is for (audience), so one
// seen on the way to chat does not open identity, and lives 60 s. Servers
// check it in a gRPC server interceptor before any handler runs and refuse
// with UNAUTHENTICATED, code `service_unauthenticated`. grpc.health.v1 is
// exempt: it says SERVING or not, nothing else, and probes cannot sign.
// A caller makes one token per audience per second (shared by that second's
// calls) and a server remembers the tokens it verified until they expire, so
// neither side computes an HMAC per call.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import {
  InterceptingCall,
  Metadata,
  ServerInterceptingCall,
  status as GrpcStatus,
  type Interceptor,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import { ConfigError, commonConfig, loadConfig } from './config.js';
import { ErrorReason } from './errors.js';
import type { Logger } from './logger.js';

export const SERVICE_TOKEN_HEADER = 'x-bil-service-token';
/** The stable error code of a refused caller (gRPC status UNAUTHENTICATED). */
export const SERVICE_UNAUTHENTICATED = ErrorReason.SERVICE_UNAUTHENTICATED;
/** How long a token is valid after it is made. */
export const SERVICE_TOKEN_TTL_SECONDS = 60;
/** Clock difference between two hosts a token survives. */
const CLOCK_SKEW_SECONDS = 30;
const NAME = /^[a-z][a-z0-9-]{0,31}$/;
const HEALTH_PREFIX = '/grpc.health.v1.Health/';

/**
 * The public development secret: used when SERVICE_AUTH_SECRET is unset
 * outside production (in-process tests, a service run by hand). `npm start`
 * and the Helm chart always set a random one; production refuses to start
 * without one.
 */
export const DEVELOPMENT_SERVICE_AUTH_SECRET = 'bil-development-service-auth-secret-public-do-not-use';

function parseSecret(raw: string): string {
  if (raw.length < 32) throw new Error('must be at least 32 characters (e.g. openssl rand -base64 32)');
  if (/\s/.test(raw)) throw new Error('must not contain white space');
  return raw;
}

/** The settings of every process that serves or calls internal gRPC. */
export const serviceAuthConfig = {
  SERVICE_AUTH_SECRET: {
    doc: 'the shared secret (≥ 32 characters, e.g. openssl rand -base64 32) that signs internal gRPC calls; required in production',
    optional: true,
    secret: true,
    parse: parseSecret,
  },
  SERVICE_AUTH_PREVIOUS_SECRET: {
    doc: 'the secret being rotated out: still accepted from callers, never used to sign (docs/deploy.md, "Rotating the service secret")',
    optional: true,
    secret: true,
    parse: parseSecret,
  },
};

interface ServiceAuthSettings {
  NODE_ENV: string;
  SERVICE_AUTH_SECRET?: string;
  SERVICE_AUTH_PREVIOUS_SECRET?: string;
}

/** Stops a production process that has no SERVICE_AUTH_SECRET (call from a service's config loader). */
export function checkServiceAuthConfig(config: ServiceAuthSettings): void {
  if (config.NODE_ENV === 'production' && !config.SERVICE_AUTH_SECRET) {
    throw new ConfigError(['SERVICE_AUTH_SECRET is required when NODE_ENV=production (≥ 32 characters: openssl rand -base64 32; docs/deploy.md)']);
  }
}

function deriveKey(secret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, '', 'bil service token v1', 32));
}

/** Valid tokens remembered by a verifier (a few callers × a token a second each, for their life). */
const VERIFIED_MEMO_MAX = 4096;

export class ServiceAuth {
  private readonly signingKey: Buffer;
  private readonly verifyKeys: Buffer[];
  /**
   * The token last made per audience and the second it was made in: a token
   * is a function of (audience, second), so the calls within one second
   * share one HMAC instead of one each.
   */
  private readonly signed = new Map<string, { second: number; token: string }>();
  /**
   * Tokens whose MAC verified, exactly as received → caller and expiry: a
   * token seen again (a caller reuses one for up to a second) is not MACed
   * again; its expiry is checked on every call as for a new one. Only valid
   * tokens get in, so the memo holds what the callers made lately; past
   * VERIFIED_MEMO_MAX it starts over.
   */
  private readonly verified = new Map<string, { caller: string; exp: number }>();

  /**
   * `service` is this process's name (the caller name in the tokens it makes,
   * the audience of the tokens it accepts).
   * @example
   *   const auth = new ServiceAuth('gateway', process.env.SERVICE_AUTH_SECRET!);
   *   new ChatService(address, credentials.createInsecure(), auth.clientOptions('chat'));
   */
  constructor(
    readonly service: string,
    secret: string,
    previousSecret?: string,
    /** Where refusals are logged (one line per change, or per second). */
    readonly logger?: Logger,
  ) {
    if (!NAME.test(service)) throw new Error('invalid service name');
    this.signingKey = deriveKey(secret);
    this.verifyKeys = [this.signingKey, ...(previousSecret ? [deriveKey(previousSecret)] : [])];
  }

  /** From a loaded configuration: its secret, else (outside production) the public development secret. */
  static fromConfig(service: string, config: ServiceAuthSettings, logger?: Logger): ServiceAuth {
    checkServiceAuthConfig(config);
    if (!config.SERVICE_AUTH_SECRET) logger?.warn('SERVICE_AUTH_SECRET is unset: internal gRPC uses the public development secret (never in production)');
    return new ServiceAuth(service, config.SERVICE_AUTH_SECRET ?? DEVELOPMENT_SERVICE_AUTH_SECRET, config.SERVICE_AUTH_PREVIOUS_SECRET, logger);
  }

  /** From the environment (SERVICE_AUTH_SECRET, NODE_ENV), as fromConfig; for tools and tests that run no config loader. */
  static fromEnv(service: string, env: NodeJS.ProcessEnv = process.env, logger?: Logger): ServiceAuth {
    return ServiceAuth.fromConfig(service, loadConfig({ NODE_ENV: commonConfig.NODE_ENV, ...serviceAuthConfig }, env), logger);
  }

  /** A token for one call to `audience`, valid SERVICE_TOKEN_TTL_SECONDS from `nowMs`. */
  sign(audience: string, nowMs = Date.now()): string {
    const second = Math.floor(nowMs / 1000);
    const last = this.signed.get(audience);
    if (last?.second === second) return last.token;
    if (!NAME.test(audience)) throw new Error('invalid audience');
    const body = `v1.${this.service}.${audience}.${second + SERVICE_TOKEN_TTL_SECONDS}`;
    const token = `${body}.${mac(this.signingKey, body).toString('base64url')}`;
    this.signed.set(audience, { second, token });
    return token;
  }

  /** The calling service's name if `token` is valid for this service now; undefined otherwise (no reason: no oracle). */
  verify(token: unknown, nowMs = Date.now()): string | undefined {
    if (typeof token !== 'string' || token.length > 200) return undefined;
    const known = this.verified.get(token);
    if (known) return inWindow(known.exp, nowMs) ? known.caller : undefined;
    const parts = token.split('.');
    if (parts.length !== 5) return undefined;
    const [version, caller, audience, expires, signature] = parts as [string, string, string, string, string];
    if (version !== 'v1' || !NAME.test(caller) || !/^\d{1,12}$/.test(expires) || !/^[A-Za-z0-9_-]{43}$/.test(signature)) return undefined;
    // The MAC first, in constant time, before anything the token says is trusted.
    const body = `${version}.${caller}.${audience}.${expires}`;
    const given = Buffer.from(signature, 'base64url');
    let ok = false;
    for (const key of this.verifyKeys) ok = timingSafeEqual(mac(key, body), given) || ok;
    if (!ok || audience !== this.service) return undefined;
    const exp = Number(expires);
    if (!inWindow(exp, nowMs)) return undefined;
    if (this.verified.size >= VERIFIED_MEMO_MAX) this.verified.clear();
    this.verified.set(token, { caller, exp });
    return caller;
  }

  /** A client interceptor that signs every call to `audience`, and reports a refusal as the backend being unavailable. */
  clientInterceptor(audience: string, logger = this.logger): Interceptor {
    let refused = false;
    return (options, nextCall) =>
      new InterceptingCall(nextCall(options), {
        start: (metadata, _listener, next) => {
          metadata.set(SERVICE_TOKEN_HEADER, this.sign(audience));
          // A partial listener: grpc-js passes what it does not name through.
          next(metadata, {
            onReceiveStatus: (status, nextStatus) => {
              const wasRefused = status.code === GrpcStatus.UNAUTHENTICATED && status.metadata.get('bil-error-code')[0] === SERVICE_UNAUTHENTICATED;
              if (wasRefused !== refused) {
                refused = wasRefused;
                if (wasRefused) logger?.error({ audience }, `${audience} refuses this service's credentials: SERVICE_AUTH_SECRET differs between the two`);
                else logger?.info({ audience }, `${audience} accepts this service's credentials again`);
              }
              // Never the end user's 401: to them a backend we cannot use is unavailable.
              if (wasRefused) nextStatus({ code: GrpcStatus.UNAVAILABLE, details: 'a backend service is unavailable, try again', metadata: new Metadata() });
              else nextStatus(status);
            },
          });
        },
      });
  }

  /** `base` (the runtime clientOptions, by default) with the signing interceptor for `audience`. */
  clientOptions<T extends object>(audience: string, base: T): T & { interceptors: Interceptor[] } {
    return { ...base, interceptors: [this.clientInterceptor(audience)] };
  }

  /** The server interceptor that refuses every call without a valid token for this service (health checks aside). */
  serverInterceptor(logger = this.logger): ServerInterceptor {
    let lastLog = 0;
    return (method, call) =>
      new ServerInterceptingCall(call, {
        start: (next) =>
          next({
            onReceiveMetadata: (metadata, nextMetadata) => {
              if (method.path.startsWith(HEALTH_PREFIX) || this.verify(metadata.get(SERVICE_TOKEN_HEADER)[0]) !== undefined) {
                nextMetadata(metadata);
                return;
              }
              // At most one line a second however many calls are refused; never the token itself.
              if (Date.now() - lastLog > 1000) {
                lastLog = Date.now();
                logger?.warn({ method: method.path, peer: call.getPeer() }, 'internal call refused: no valid service token');
              }
              const trailers = new Metadata();
              trailers.set('bil-error-code', SERVICE_UNAUTHENTICATED);
              call.sendStatus({ code: GrpcStatus.UNAUTHENTICATED, details: 'service authentication required', metadata: trailers });
            },
          }),
      });
  }
}

/** Whether a token expiring at `exp` (unix seconds) is valid at `nowMs`, with CLOCK_SKEW_SECONDS either way. */
function inWindow(exp: number, nowMs: number): boolean {
  const now = Math.floor(nowMs / 1000);
  return exp >= now - CLOCK_SKEW_SECONDS && exp <= now + SERVICE_TOKEN_TTL_SECONDS + CLOCK_SKEW_SECONDS;
}

function mac(key: Buffer, body: string): Buffer {
  return createHmac('sha256', key).update(body).digest();
}
