// /v1/devices: managing the caller's own devices.
import type { FastifyInstance } from 'fastify';
import { revokeDeviceSchema, type DeviceParams } from '../schemas.js';
import { actorOf, inContext, type RouteContext } from './context.js';

export function deviceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.delete<{ Params: DeviceParams }>(
    '/v1/devices/:device_id',
    { schema: revokeDeviceSchema, onRequest: ctx.authenticate },
    async (request) => {
      const res = await inContext(request, () =>
        ctx.identity.revokeDevice({ actor: actorOf(request), deviceId: request.params.device_id }),
      );
      return { device_id: res.deviceId };
    },
  );
}
