// gRPC surface of the identity service: maps proto messages to the
// application layer and back. Validation lives in the app/domain layers.
import { unauthenticated, type AsyncHandlers } from '@bil/runtime';
import type { IdentityServiceHandlers } from '@bil/proto/gen/bil/identity/v1/IdentityService';
import type { Actor__Output } from '@bil/proto/gen/bil/identity/v1/Actor';
import type { Device } from '@bil/proto/gen/bil/identity/v1/Device';
import type { PublicUser as PublicUserMsg } from '@bil/proto/gen/bil/identity/v1/PublicUser';
import type { TokenPair } from '@bil/proto/gen/bil/identity/v1/TokenPair';
import type { PushSubscription } from '@bil/proto/gen/bil/identity/v1/PushSubscription';
import type { Actor, DeviceRecord, IdentityApp, PublicUser, PushSubscriptionRecord, Tokens } from '../app/identity-app.js';
import { publicDevice } from '../domain/device/device.js';

function actorOf(a: Actor__Output | null): Actor {
  if (!a?.userId || !a.deviceId || !a.sessionId) throw unauthenticated('missing_actor', 'the request has no signed-in actor');
  return { userId: a.userId, deviceId: a.deviceId, sessionId: a.sessionId };
}

const userMsg = (u: PublicUser): PublicUserMsg => ({
  userId: u.userId,
  username: u.username,
  displayName: u.displayName,
  identityKey: u.identityKey ?? '',
  identityKeyChangedAt: u.identityKeyChangedAt ?? '',
  createdAt: u.createdAt,
});

const deviceMsg = (d: DeviceRecord): Device => ({ ...publicDevice(d), createdAt: d.createdAt });

const tokensMsg = (t: Tokens): TokenPair => ({
  accessToken: t.accessToken,
  accessTokenExpiresAt: t.accessTokenExpiresAt,
  refreshToken: t.refreshToken,
  refreshTokenExpiresAt: t.refreshTokenExpiresAt,
  tokenType: 'Bearer',
  sessionId: t.sessionId,
});

const pushMsg = (s: PushSubscriptionRecord): PushSubscription => ({ ...s });

export function identityHandlers(app: IdentityApp): AsyncHandlers<IdentityServiceHandlers> {
  return {
    RegisterUser: async (req) => ({ user: userMsg(await app.registerUser(req)) }),
    RegisterDevice: async (req) => {
      const r = await app.registerDevice({
        username: req.username,
        password: req.password,
        deviceName: req.deviceName,
        encryptionKey: req.encryptionKey,
        signingKey: req.signingKey,
        identityKey: req.identityKey,
        certificate: req.certificate,
        certificateIssuedAt: req.certificateIssuedAt,
        resetIdentity: req.resetIdentity,
        deviceId: req.deviceId,
        deviceList: req.deviceList,
      });
      return { device: deviceMsg(r.device), tokens: tokensMsg(r.tokens) };
    },
    Login: async (req) => {
      const r = await app.login(req);
      return { userId: r.userId, tokens: tokensMsg(r.tokens) };
    },
    RefreshSession: async (req) => ({ tokens: tokensMsg(await app.refresh(req)) }),
    Logout: async (req) => {
      await app.logout(actorOf(req.actor));
      return {};
    },
    RevokeDevice: async (req) => ({ deviceId: await app.revokeDevice(actorOf(req.actor), req.deviceId, req.deviceList) }),
    PublishDeviceList: async (req) => ({ version: String(await app.publishDeviceList(actorOf(req.actor), req.deviceList)) }),
    GetAccount: async (req) => {
      const r = await app.getAccount(actorOf(req.actor));
      return { user: userMsg(r.user), devices: r.devices.map(deviceMsg), deviceList: r.deviceList ?? '' };
    },
    UpdateProfile: async (req) => ({ user: userMsg(await app.updateProfile(actorOf(req.actor), req.displayName)) }),
    ChangePassword: async (req) => {
      await app.changePassword(actorOf(req.actor), req);
      return {};
    },
    DeleteAccount: async (req) => {
      await app.deleteAccount(actorOf(req.actor), req.password, req.deviceList);
      return {};
    },
    FindUser: async (req) => ({ user: userMsg(await app.findUser(req.username)) }),
    GetUser: async (req) => ({ user: userMsg(await app.getUser(req.userId)) }),
    ListDevices: async (req) => {
      const r = await app.listDevices(req.userId);
      return { identityKey: r.identityKey ?? '', devices: r.devices.map(deviceMsg), deviceList: r.deviceList ?? '' };
    },
    GetJwks: async () => ({ jwksJson: app.jwks() }),
    SetPushSubscription: async (req) => ({
      subscription: pushMsg(await app.setPushSubscription(actorOf(req.actor), { deviceId: req.deviceId, endpoint: req.endpoint, p256dh: req.p256dh, auth: req.auth })),
    }),
    DeletePushSubscription: async (req) => ({ deleted: await app.deletePushSubscription(actorOf(req.actor), req.deviceId) }),
    ListPushSubscriptions: async (req) => ({ subscriptions: (await app.listPushSubscriptions(req.deviceIds, req.userIds)).map(pushMsg) }),
    DeletePushSubscriptionByEndpoint: async (req) => ({ deleted: await app.deletePushSubscriptionByEndpoint(req.deviceId, req.endpoint) }),
  };
}
