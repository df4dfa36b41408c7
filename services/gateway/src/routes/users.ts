// /v1/users: finding other users and their key directory entries.
import type { FastifyInstance } from 'fastify';
import type { DirectoryJson } from '@bil/proto/rest';
import { deviceJson, deviceListJson, userJson } from '../mappers.js';
import { findUserSchema, listDevicesSchema, type FindUserQuery, type UserParams } from '../schemas.js';
import { enforceLookupLimit } from '../rate-limit.js';
import { actorOf, inContext, type RouteContext } from './context.js';

export function userRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get<{ Querystring: FindUserQuery }>(
    '/v1/users',
    { schema: findUserSchema, onRequest: ctx.authenticate },
    async (request) => {
      await enforceLookupLimit(ctx.limiter, ctx.limits, actorOf(request).userId);
      const res = await inContext(request, () => ctx.identity.findUser({ username: request.query.username }));
      return { user: userJson(res.user) };
    },
  );

  app.get<{ Params: UserParams }>(
    '/v1/users/:user_id/devices',
    { schema: listDevicesSchema, onRequest: ctx.authenticate },
    async (request): Promise<DirectoryJson> => {
      const userId = request.params.user_id;
      const res = await inContext(request, () => ctx.identity.listDevices({ userId }));
      return { user_id: userId, identity_key: res.identityKey, devices: res.devices.map(deviceJson), device_list: deviceListJson(res.deviceList) };
    },
  );
}
