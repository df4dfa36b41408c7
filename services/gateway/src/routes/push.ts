// Web Push (docs/push.md): the VAPID public key, and a device's own subscription.
import { AppError } from '@bil/runtime';
import type { FastifyInstance } from 'fastify';
import { deletePushSubscriptionSchema, putPushSubscriptionSchema, vapidKeySchema, type PushSubscriptionParams, type PutPushSubscriptionBody } from '../push-schemas.js';
import { actorOf, inContext, type RouteContext } from './context.js';

export function pushRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/v1/push/vapid-key', { schema: vapidKeySchema }, async () => {
    if (!ctx.vapidPublicKey) throw new AppError('unavailable', 'push_unavailable', 'push notifications are not configured on this server');
    return { vapid_public_key: ctx.vapidPublicKey };
  });

  app.put<{ Params: PushSubscriptionParams; Body: PutPushSubscriptionBody }>(
    '/v1/devices/:device_id/push-subscription',
    { schema: putPushSubscriptionSchema, onRequest: ctx.authenticate },
    async (request) => {
      const b = request.body;
      const res = await inContext(request, () =>
        ctx.identity.setPushSubscription({ actor: actorOf(request), deviceId: request.params.device_id, endpoint: b.endpoint, p256dh: b.keys.p256dh, auth: b.keys.auth }),
      );
      if (!res.subscription) throw new AppError('internal', 'internal', 'identity returned no subscription');
      return { device_id: res.subscription.deviceId, created_at: res.subscription.createdAt };
    },
  );

  app.delete<{ Params: PushSubscriptionParams }>(
    '/v1/devices/:device_id/push-subscription',
    { schema: deletePushSubscriptionSchema, onRequest: ctx.authenticate },
    async (request, reply) => {
      await inContext(request, () => ctx.identity.deletePushSubscription({ actor: actorOf(request), deviceId: request.params.device_id }));
      return reply.code(204).send();
    },
  );
}
