// /v1/me: the caller's own account.
import type { FastifyInstance } from 'fastify';
import type { MeJson } from '@bil/proto/rest';
import { deviceJson, deviceListJson, deviceListText, int64ToNumber, userJson } from '../mappers.js';
import {
  changePasswordSchema,
  deleteMeSchema,
  getMeSchema,
  publishDeviceListSchema,
  updateMeSchema,
  type ChangePasswordBody,
  type DeleteMeBody,
  type PublishDeviceListBody,
  type UpdateMeBody,
} from '../schemas.js';
import { actorOf, inContext, type RouteContext } from './context.js';

export function meRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/v1/me', { schema: getMeSchema, onRequest: ctx.authenticate }, async (request): Promise<MeJson> => {
    const res = await inContext(request, () => ctx.identity.getAccount({ actor: actorOf(request) }));
    return { user: userJson(res.user), devices: res.devices.map(deviceJson), device_list: deviceListJson(res.deviceList) };
  });

  app.put<{ Body: PublishDeviceListBody }>(
    '/v1/me/device-list',
    { schema: publishDeviceListSchema, onRequest: ctx.authenticate },
    async (request) => {
      const res = await inContext(request, () =>
        ctx.identity.publishDeviceList({ actor: actorOf(request), deviceList: deviceListText(request.body.device_list) }),
      );
      return { version: int64ToNumber(res.version) };
    },
  );

  app.patch<{ Body: UpdateMeBody }>('/v1/me', { schema: updateMeSchema, onRequest: ctx.authenticate }, async (request) => {
    const res = await inContext(request, () =>
      ctx.identity.updateProfile({ actor: actorOf(request), displayName: request.body.display_name }),
    );
    return { user: userJson(res.user) };
  });

  app.delete<{ Body: DeleteMeBody }>(
    '/v1/me',
    { schema: deleteMeSchema, onRequest: ctx.authenticate },
    async (request, reply) => {
      await inContext(request, () =>
        ctx.identity.deleteAccount({
          actor: actorOf(request),
          password: request.body.password,
          deviceList: deviceListText(request.body.device_list),
        }),
      );
      return reply.code(204).send();
    },
  );

  app.post<{ Body: ChangePasswordBody }>(
    '/v1/me/password',
    { schema: changePasswordSchema, onRequest: ctx.authenticate },
    async (request, reply) => {
      await inContext(request, () =>
        ctx.identity.changePassword({
          actor: actorOf(request),
          oldPassword: request.body.old_password,
          newPassword: request.body.new_password,
        }),
      );
      return reply.code(204).send();
    },
  );
}
