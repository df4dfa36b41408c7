// The gateway's view of the identity service: one typed async method per RPC
// it uses, each with a deadline and the request's correlation id (runtime
// callUnary), failing with the AppError identity sent. Routes depend on the
// IdentityApi interface, so tests can start the app against a stub.
import { credentials } from '@grpc/grpc-js';
import { callUnary, clientOptions, type ServiceAuth } from '@bil/runtime';
import { healthOf } from './grpc-health.js';
import { loadIdentityProto } from '@bil/proto';
import type { IdentityServiceClient } from '@bil/proto/gen/bil/identity/v1/IdentityService';
import type { RegisterUserRequest } from '@bil/proto/gen/bil/identity/v1/RegisterUserRequest';
import type { RegisterUserResponse__Output } from '@bil/proto/gen/bil/identity/v1/RegisterUserResponse';
import type { RegisterDeviceRequest } from '@bil/proto/gen/bil/identity/v1/RegisterDeviceRequest';
import type { RegisterDeviceResponse__Output } from '@bil/proto/gen/bil/identity/v1/RegisterDeviceResponse';
import type { LoginRequest } from '@bil/proto/gen/bil/identity/v1/LoginRequest';
import type { LoginResponse__Output } from '@bil/proto/gen/bil/identity/v1/LoginResponse';
import type { RefreshSessionRequest } from '@bil/proto/gen/bil/identity/v1/RefreshSessionRequest';
import type { RefreshSessionResponse__Output } from '@bil/proto/gen/bil/identity/v1/RefreshSessionResponse';
import type { LogoutRequest } from '@bil/proto/gen/bil/identity/v1/LogoutRequest';
import type { LogoutResponse__Output } from '@bil/proto/gen/bil/identity/v1/LogoutResponse';
import type { RevokeDeviceRequest } from '@bil/proto/gen/bil/identity/v1/RevokeDeviceRequest';
import type { RevokeDeviceResponse__Output } from '@bil/proto/gen/bil/identity/v1/RevokeDeviceResponse';
import type { GetAccountRequest } from '@bil/proto/gen/bil/identity/v1/GetAccountRequest';
import type { GetAccountResponse__Output } from '@bil/proto/gen/bil/identity/v1/GetAccountResponse';
import type { UpdateProfileRequest } from '@bil/proto/gen/bil/identity/v1/UpdateProfileRequest';
import type { UpdateProfileResponse__Output } from '@bil/proto/gen/bil/identity/v1/UpdateProfileResponse';
import type { ChangePasswordRequest } from '@bil/proto/gen/bil/identity/v1/ChangePasswordRequest';
import type { ChangePasswordResponse__Output } from '@bil/proto/gen/bil/identity/v1/ChangePasswordResponse';
import type { DeleteAccountRequest } from '@bil/proto/gen/bil/identity/v1/DeleteAccountRequest';
import type { DeleteAccountResponse__Output } from '@bil/proto/gen/bil/identity/v1/DeleteAccountResponse';
import type { FindUserRequest } from '@bil/proto/gen/bil/identity/v1/FindUserRequest';
import type { FindUserResponse__Output } from '@bil/proto/gen/bil/identity/v1/FindUserResponse';
import type { ListDevicesRequest } from '@bil/proto/gen/bil/identity/v1/ListDevicesRequest';
import type { ListDevicesResponse__Output } from '@bil/proto/gen/bil/identity/v1/ListDevicesResponse';
import type { GetJwksResponse__Output } from '@bil/proto/gen/bil/identity/v1/GetJwksResponse';
import type { PublishDeviceListRequest } from '@bil/proto/gen/bil/identity/v1/PublishDeviceListRequest';
import type { PublishDeviceListResponse__Output } from '@bil/proto/gen/bil/identity/v1/PublishDeviceListResponse';
import type { SetPushSubscriptionRequest } from '@bil/proto/gen/bil/identity/v1/SetPushSubscriptionRequest';
import type { SetPushSubscriptionResponse__Output } from '@bil/proto/gen/bil/identity/v1/SetPushSubscriptionResponse';
import type { DeletePushSubscriptionRequest } from '@bil/proto/gen/bil/identity/v1/DeletePushSubscriptionRequest';
import type { DeletePushSubscriptionResponse__Output } from '@bil/proto/gen/bil/identity/v1/DeletePushSubscriptionResponse';

export type { Actor } from '@bil/proto/gen/bil/identity/v1/Actor';
export type { PublicUser__Output as PublicUser } from '@bil/proto/gen/bil/identity/v1/PublicUser';
export type { Device__Output as Device } from '@bil/proto/gen/bil/identity/v1/Device';
export type { TokenPair__Output as TokenPair } from '@bil/proto/gen/bil/identity/v1/TokenPair';

/** What the gateway asks of the identity service. */
export interface IdentityApi {
  registerUser(req: RegisterUserRequest): Promise<RegisterUserResponse__Output>;
  registerDevice(req: RegisterDeviceRequest): Promise<RegisterDeviceResponse__Output>;
  login(req: LoginRequest): Promise<LoginResponse__Output>;
  refreshSession(req: RefreshSessionRequest): Promise<RefreshSessionResponse__Output>;
  logout(req: LogoutRequest): Promise<LogoutResponse__Output>;
  revokeDevice(req: RevokeDeviceRequest): Promise<RevokeDeviceResponse__Output>;
  getAccount(req: GetAccountRequest): Promise<GetAccountResponse__Output>;
  updateProfile(req: UpdateProfileRequest): Promise<UpdateProfileResponse__Output>;
  changePassword(req: ChangePasswordRequest): Promise<ChangePasswordResponse__Output>;
  deleteAccount(req: DeleteAccountRequest): Promise<DeleteAccountResponse__Output>;
  findUser(req: FindUserRequest): Promise<FindUserResponse__Output>;
  listDevices(req: ListDevicesRequest): Promise<ListDevicesResponse__Output>;
  publishDeviceList(req: PublishDeviceListRequest): Promise<PublishDeviceListResponse__Output>;
  setPushSubscription(req: SetPushSubscriptionRequest): Promise<SetPushSubscriptionResponse__Output>;
  deletePushSubscription(req: DeletePushSubscriptionRequest): Promise<DeletePushSubscriptionResponse__Output>;
  /** The JWK Set (RFC 7517) as JSON text. */
  getJwks(): Promise<string>;
  /** Resolves when identity's grpc.health.v1 check answers SERVING. */
  checkHealth(timeoutMs?: number): Promise<void>;
  close(): void;
}


/** Connects to identity at `address` (host:port), each call signed by `auth`; calls time out after `timeoutMs`. */
export function createIdentityClient(address: string, timeoutMs: number, auth: ServiceAuth): IdentityApi {
  const proto = loadIdentityProto();
  const client = new proto.bil.identity.v1.IdentityService(address, credentials.createInsecure(), auth.clientOptions('identity', clientOptions));
  const lifecycle = healthOf('identity', address, client);
  const settings = { timeoutMs };
  const c: IdentityServiceClient = client;

  return {
    registerUser: (req) => callUnary(c, c.RegisterUser, req, settings),
    registerDevice: (req) => callUnary(c, c.RegisterDevice, req, settings),
    login: (req) => callUnary(c, c.Login, req, settings),
    refreshSession: (req) => callUnary(c, c.RefreshSession, req, settings),
    logout: (req) => callUnary(c, c.Logout, req, settings),
    revokeDevice: (req) => callUnary(c, c.RevokeDevice, req, settings),
    getAccount: (req) => callUnary(c, c.GetAccount, req, settings),
    updateProfile: (req) => callUnary(c, c.UpdateProfile, req, settings),
    changePassword: (req) => callUnary(c, c.ChangePassword, req, settings),
    deleteAccount: (req) => callUnary(c, c.DeleteAccount, req, settings),
    findUser: (req) => callUnary(c, c.FindUser, req, settings),
    listDevices: (req) => callUnary(c, c.ListDevices, req, settings),
    publishDeviceList: (req) => callUnary(c, c.PublishDeviceList, req, settings),
    setPushSubscription: (req) => callUnary(c, c.SetPushSubscription, req, settings),
    deletePushSubscription: (req) => callUnary(c, c.DeletePushSubscription, req, settings),
    getJwks: async () => {
      const res = await callUnary<object, GetJwksResponse__Output>(c, c.GetJwks, {}, settings);
      return res.jwksJson;
    },
    ...lifecycle,
  };
}
