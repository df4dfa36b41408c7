// The gateway's view of the digest service (bil.digest.v1.DigestService): one
// typed async method per RPC, each with a deadline and the request's
// correlation id, failing with the AppError digest sent. Routes depend on the
// DigestApi interface, so tests can start the app against a stub.
import { credentials } from '@grpc/grpc-js';
import { callUnary, clientOptions, type ServiceAuth } from '@bil/runtime';
import { healthOf } from './grpc-health.js';
import { loadDigestProto } from '@bil/proto';
import type { DigestServiceClient } from '@bil/proto/gen/bil/digest/v1/DigestService';
import type { GetDigestKeyRequest } from '@bil/proto/gen/bil/digest/v1/GetDigestKeyRequest';
import type { GetDigestKeyResponse__Output } from '@bil/proto/gen/bil/digest/v1/GetDigestKeyResponse';
import type { GetDigestPolicyRequest } from '@bil/proto/gen/bil/digest/v1/GetDigestPolicyRequest';
import type { GetDigestPolicyResponse__Output } from '@bil/proto/gen/bil/digest/v1/GetDigestPolicyResponse';
import type { SetDigestPolicyRequest } from '@bil/proto/gen/bil/digest/v1/SetDigestPolicyRequest';
import type { SetDigestPolicyResponse__Output } from '@bil/proto/gen/bil/digest/v1/SetDigestPolicyResponse';
import type { SetDigestConsentRequest } from '@bil/proto/gen/bil/digest/v1/SetDigestConsentRequest';
import type { SetDigestConsentResponse__Output } from '@bil/proto/gen/bil/digest/v1/SetDigestConsentResponse';
import type { RequestDigestRequest } from '@bil/proto/gen/bil/digest/v1/RequestDigestRequest';
import type { RequestDigestResponse__Output } from '@bil/proto/gen/bil/digest/v1/RequestDigestResponse';
import type { GetDigestRequest } from '@bil/proto/gen/bil/digest/v1/GetDigestRequest';
import type { GetDigestResponse__Output } from '@bil/proto/gen/bil/digest/v1/GetDigestResponse';

export type { Digest__Output as Digest } from '@bil/proto/gen/bil/digest/v1/Digest';
export type { ChatDigestPolicy__Output as ChatDigestPolicy } from '@bil/proto/gen/bil/digest/v1/ChatDigestPolicy';

/** What the gateway asks of the digest service. */
export interface DigestApi {
  getDigestKey(req: GetDigestKeyRequest): Promise<GetDigestKeyResponse__Output>;
  getDigestPolicy(req: GetDigestPolicyRequest): Promise<GetDigestPolicyResponse__Output>;
  setDigestPolicy(req: SetDigestPolicyRequest): Promise<SetDigestPolicyResponse__Output>;
  setDigestConsent(req: SetDigestConsentRequest): Promise<SetDigestConsentResponse__Output>;
  requestDigest(req: RequestDigestRequest): Promise<RequestDigestResponse__Output>;
  getDigest(req: GetDigestRequest): Promise<GetDigestResponse__Output>;
  /** Resolves when digest's grpc.health.v1 check answers SERVING. */
  checkHealth(timeoutMs?: number): Promise<void>;
  close(): void;
}


/** Connects to digest at `address` (host:port); calls time out after `timeoutMs`. */
export function createDigestClient(address: string, timeoutMs: number, auth: ServiceAuth, maxMessageBytes = 16 * 1024 * 1024): DigestApi {
  const proto = loadDigestProto();
  const client = new proto.bil.digest.v1.DigestService(address, credentials.createInsecure(), auth.clientOptions('digest', {
    ...clientOptions,
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  }));
  const lifecycle = healthOf('digest', address, client);
  const settings = { timeoutMs };
  const c: DigestServiceClient = client;
  return {
    getDigestKey: (req) => callUnary(c, c.GetDigestKey, req, settings),
    getDigestPolicy: (req) => callUnary(c, c.GetDigestPolicy, req, settings),
    setDigestPolicy: (req) => callUnary(c, c.SetDigestPolicy, req, settings),
    setDigestConsent: (req) => callUnary(c, c.SetDigestConsent, req, settings),
    requestDigest: (req) => callUnary(c, c.RequestDigest, req, settings),
    getDigest: (req) => callUnary(c, c.GetDigest, req, settings),
    ...lifecycle,
  };
}
