// /v1/auth: registration, device registration, sign-in, refresh, sign-out.
import type { FastifyInstance } from 'fastify';
import { deviceJson, deviceListText, tokensJson, userJson } from '../mappers.js';
import {
  loginSchema,
  logoutSchema,
  refreshSchema,
  registerDeviceSchema,
  registerSchema,
  type LoginBody,
  type RefreshBody,
  type RegisterBody,
  type RegisterDeviceBody,
} from '../schemas.js';
import { actorOf, inContext, limitAuthAttempt, type RouteContext } from './context.js';

export function authRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.post<{ Body: RegisterBody }>('/v1/auth/register', { schema: registerSchema }, async (request, reply) => {
    const body = request.body;
    await limitAuthAttempt(ctx, request, body.username);
    const res = await inContext(request, () =>
      ctx.identity.registerUser({
        username: body.username,
        password: body.password,
        displayName: body.display_name ?? '',
      }),
    );
    return reply.code(201).send({ user: userJson(res.user) });
  });

  app.post<{ Body: RegisterDeviceBody }>('/v1/auth/devices', { schema: registerDeviceSchema }, async (request, reply) => {
    const body = request.body;
    await limitAuthAttempt(ctx, request, body.username);
    const res = await inContext(request, () =>
      ctx.identity.registerDevice({
        username: body.username,
        password: body.password,
        deviceName: body.device_name,
        encryptionKey: body.encryption_key,
        signingKey: body.signing_key,
        identityKey: body.identity_key,
        certificate: body.certificate,
        certificateIssuedAt: String(body.certificate_issued_at),
        resetIdentity: body.reset_identity ?? false,
        deviceId: body.device_id ?? '',
        deviceList: deviceListText(body.device_list),
      }),
    );
    if (!res.device) throw new Error('identity returned no device');
    return reply.code(201).send({ device: deviceJson(res.device), tokens: tokensJson(res.tokens) });
  });

  app.post<{ Body: LoginBody }>('/v1/auth/login', { schema: loginSchema }, async (request) => {
    const body = request.body;
    await limitAuthAttempt(ctx, request, body.username);
    const res = await inContext(request, () =>
      ctx.identity.login({ username: body.username, password: body.password, deviceId: body.device_id }),
    );
    return { user_id: res.userId, tokens: tokensJson(res.tokens) };
  });

  app.post<{ Body: RefreshBody }>('/v1/auth/refresh', { schema: refreshSchema }, async (request) => {
    const res = await inContext(request, () => ctx.identity.refreshSession({ refreshToken: request.body.refresh_token }));
    return { tokens: tokensJson(res.tokens) };
  });

  app.post('/v1/auth/logout', { schema: logoutSchema, onRequest: ctx.authenticate }, async (request, reply) => {
    await inContext(request, () => ctx.identity.logout({ actor: actorOf(request) }));
    return reply.code(204).send();
  });
}
