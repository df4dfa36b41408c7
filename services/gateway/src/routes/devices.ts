// /v1/devices: managing the caller's own devices.
import type { FastifyInstance } from 'fastify';
import { deviceListText } from '../mappers.js';
import { revokeDeviceSchema, type DeviceParams, type RevokeDeviceBody } from '../schemas.js';
import { actorOf, inContext, type RouteContext } from './context.js';

export function deviceRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.delete<{ Params: DeviceParams; Body: RevokeDeviceBody | undefined }>(
    '/v1/devices/:device_id',
    {
      schema: revokeDeviceSchema,
      onRequest: ctx.authenticate,
      // The body is optional: none means "no device list with the revocation".
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const res = await inContext(request, () =>
        ctx.identity.revokeDevice({
          actor: actorOf(request),
          deviceId: request.params.device_id,
          deviceList: deviceListText(request.body?.device_list),
        }),
      );
      return { device_id: res.deviceId };
    },
  );
}
