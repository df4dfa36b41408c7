// Liveness, readiness and the OpenAPI document.
import type { FastifyInstance } from 'fastify';
import { errorBody, retryAfterSeconds } from '../errors.js';
import { blockingDown } from '../readiness.js';
import { healthSchema, openapiSchema, readySchema } from '../schemas.js';
import type { RouteContext } from './context.js';

export function opsRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/healthz', { schema: healthSchema }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: readySchema }, async (_request, reply) => {
    const checks = await ctx.ready();
    const down = blockingDown(checks);
    if (down.length > 0) {
      return reply
        .code(503)
        .header('retry-after', String(retryAfterSeconds()))
        .send(errorBody('not_ready', `not ready: ${down.join(', ')} unavailable`, checks));
    }
    // Ready; a backend that is down shows as degraded (its routes answer 503 service_unavailable).
    return { status: Object.values(checks).every((v) => v === 'ok') ? 'ready' : 'degraded', checks };
  });

  app.get('/v1/openapi.json', { schema: openapiSchema }, async () => app.swagger());
}
