// Liveness, readiness and the OpenAPI document.
import type { FastifyInstance } from 'fastify';
import { errorBody } from '../errors.js';
import { blockingDown } from '../readiness.js';
import { healthSchema, openapiSchema, readySchema } from '../schemas.js';
import type { RouteContext } from './context.js';

export function opsRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/healthz', { schema: healthSchema }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: readySchema }, async (_request, reply) => {
    const checks = await ctx.ready();
    const down = blockingDown(checks);
    if (down.length > 0) {
      return reply.code(503).send(errorBody('not_ready', `not ready: ${down.join(', ')} unreachable`, checks));
    }
    // Ready; a backend the gateway can do without for a while shows as degraded.
    return { status: Object.values(checks).every((v) => v === 'ok') ? 'ready' : 'degraded', checks };
  });

  app.get('/v1/openapi.json', { schema: openapiSchema }, async () => app.swagger());
}
