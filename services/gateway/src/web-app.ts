// The web client (apps/web's build) served at `/` by the gateway: static files
// with their content types, a strict Content-Security-Policy, long caching for
// content-hashed assets, and index.html for every other GET path (the app
// routes itself). It only answers what no API route matched (the not-found
// handler calls it), and never a path under /v1, so it can't shadow the API
// or /v1/ws. Paths with `..`, NUL or backslashes are refused; a file must lie
// inside the web root after symlinks are resolved.
import { existsSync, realpathSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from './errors.js';

/** Where `npm run build` puts the web client, relative to this file (dist/web-app.js or src/web-app.ts). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../../apps/web/dist', import.meta.url));

/**
 * Same origin only: scripts and styles from files (no inline script, no eval),
 * fetch and the WebSocket to this origin, no framing, no plugins. The one
 * exception an operator can make: `modelOrigins` (GATEWAY_WEB_MODEL_ORIGINS),
 * the OpenAI-compatible endpoints a person may use for a digest with their
 * own model, which the browser then calls itself (connect-src only).
 */
export function contentSecurityPolicy(modelOrigins: readonly string[] = []): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    ["connect-src 'self'", ...modelOrigins].join(' '),
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export const CONTENT_SECURITY_POLICY = contentSecurityPolicy();

/** At most this many model origins (each one widens connect-src). */
const MAX_MODEL_ORIGINS = 16;

/**
 * GATEWAY_WEB_MODEL_ORIGINS: a comma-separated list of origins (scheme, host,
 * port; no path), https, or http on a loopback host (a model on this
 * machine). Returns the normalised origins or the problems, one line each.
 */
export function parseModelOrigins(raw: string): { origins: string[]; problems: string[] } {
  const origins: string[] = [];
  const problems: string[] = [];
  for (const item of raw.split(',').map((x) => x.trim()).filter((x) => x !== '')) {
    let u: URL;
    try {
      u = new URL(item);
    } catch {
      problems.push(`GATEWAY_WEB_MODEL_ORIGINS: "${item}" is not a URL (expected an origin such as https://api.openai.com)`);
      continue;
    }
    const loopback = u.hostname === 'localhost' || u.hostname === '127.0.0.1' || u.hostname === '[::1]';
    if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) {
      problems.push(`GATEWAY_WEB_MODEL_ORIGINS: "${item}" must be https (http only for localhost, 127.0.0.1 or [::1])`);
    } else if (!/^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/.test(u.hostname)) {
      problems.push(`GATEWAY_WEB_MODEL_ORIGINS: "${item}" must name one host (letters, digits, dots, hyphens; no wildcards)`);
    } else if (u.username || u.password || (u.pathname !== '/' && u.pathname !== '') || u.search || u.hash) {
      problems.push(`GATEWAY_WEB_MODEL_ORIGINS: "${item}" must be an origin only (no path, query, fragment or credentials)`);
    } else if (!origins.includes(u.origin)) origins.push(u.origin);
  }
  if (origins.length > MAX_MODEL_ORIGINS) problems.push(`GATEWAY_WEB_MODEL_ORIGINS: at most ${MAX_MODEL_ORIGINS} origins`);
  return { origins, problems };
}

const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  // The camera for the page itself only: it scans QR codes (safety numbers, link requests).
  'permissions-policy': 'camera=(self), microphone=(), geolocation=()',
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/** Vite writes content-hashed files under /assets/: cache them for a year; everything else is revalidated. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

export interface WebApp {
  /** The real path of the web root. */
  readonly root: string;
  /** Answers a GET or HEAD that no route matched; false when the path is the API's (the caller answers 404). */
  serve(request: FastifyRequest, reply: FastifyReply): Promise<boolean>;
}

/** True for paths that belong to the API: /v1 and everything under it, and the health routes. */
export function isApiPath(path: string): boolean {
  return path === '/v1' || path.startsWith('/v1/') || path === '/healthz' || path === '/readyz' || path === '/metrics';
}

/** What the page reads at start (GET /config.json): the model origins the CSP allows. */
export const WEB_CONFIG_PATH = '/config.json';

/** The web client in `dir`, or null when it has no index.html (not built). */
export function openWebApp(dir: string, options: { modelOrigins?: readonly string[] } = {}): WebApp | null {
  if (!existsSync(join(dir, 'index.html'))) return null;
  const root = realpathSync(dir);
  const indexPath = join(root, 'index.html');
  const modelOrigins = [...(options.modelOrigins ?? [])];
  const headers = { ...SECURITY_HEADERS, 'content-security-policy': contentSecurityPolicy(modelOrigins) };
  const webConfig = JSON.stringify({ model_origins: modelOrigins });

  async function send(reply: FastifyReply, file: string, cacheControl: string): Promise<void> {
    const body = await readFile(file);
    void reply
      .code(200)
      .headers(headers)
      .header('content-type', CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream')
      .header('cache-control', cacheControl)
      .send(body);
  }

  return {
    root,
    async serve(request, reply) {
      const raw = (request.url.split('?')[0] ?? '/').split('#')[0] ?? '/';
      if (isApiPath(raw)) return false;
      let path: string;
      try {
        path = decodeURIComponent(raw);
      } catch {
        void reply.code(400).send(errorBody('invalid_request', 'the path is not valid percent-encoding', { field: 'path' }));
        return true;
      }
      if (path === WEB_CONFIG_PATH) {
        void reply.code(200).headers(headers).header('content-type', CONTENT_TYPES['.json']!).header('cache-control', REVALIDATE).send(webConfig);
        return true;
      }
      const segments = path.split('/').filter((s) => s !== '');
      if (path.includes('\0') || path.includes('\\') || segments.some((s) => s === '..' || s === '.')) {
        void reply.code(400).send(errorBody('invalid_request', 'the path must not contain "..", "." segments, backslashes or NUL', { field: 'path' }));
        return true;
      }
      const candidate = join(root, ...segments);
      if (segments.length > 0) {
        const info = await stat(candidate).catch(() => null);
        if (info?.isFile()) {
          const real = await realpath(candidate);
          if (!real.startsWith(root + sep)) {
            void reply.code(404).send(errorBody('not_found', 'no such file'));
            return true;
          }
          await send(reply, real, segments[0] === 'assets' ? IMMUTABLE : REVALIDATE);
          return true;
        }
        // A missing asset is a 404, not the app's page (a stale index.html asking for an old bundle should fail visibly).
        if (segments[0] === 'assets') {
          void reply.code(404).send(errorBody('not_found', 'no such file'));
          return true;
        }
      }
      await send(reply, indexPath, REVALIDATE);
      return true;
    },
  };
}
