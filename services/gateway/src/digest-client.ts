// The gateway's view of the digest service (bil.digest.v1.DigestService): one
// typed async method per RPC, each with a deadline and the request's
// correlation id, failing with the AppError digest sent. Routes depend on the
// DigestApi interface, so tests can start the app against a stub.
import { credentials, makeClientConstructor, type Client, type ServiceDefinition } from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { AppError, callUnary, clientOptions, fromServiceError } from '@bil/runtime';
import { loadDigestProto } from '@bil/proto';
import type { DigestServiceClient } from '@bil/proto/gen/bil/digest/v1/DigestService';
import type { GetDigestKeyRequest } from '@bil/proto/gen/bil/digest/v1/GetDigestKeyRequest';
import type { GetDigestKeyResponse__Output } from '@bil/proto/gen/bil/digest/v1/GetDigestKeyResponse';
import type { GetDigestPolicyRequest } from '@bil/proto/gen/bil/digest/v1/GetDigestPolicyRequest';
import type { GetDigestPolicyResponse__Output } from '@bil/proto/gen/bil/digest/v1/GetDigestPolicyResponse';
import type { SetDigestPolicyRequest } from '@bil/proto/gen/bil/digest/v1/SetDigestPolicyRequest';
import type { SetDigestPolicyResponse__Output } from '@bil/proto/gen/bil/digest/v1/SetDigestPolicyResponse';
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
  requestDigest(req: RequestDigestRequest): Promise<RequestDigestResponse__Output>;
  getDigest(req: GetDigestRequest): Promise<GetDigestResponse__Output>;
  /** Resolves when digest's grpc.health.v1 check answers SERVING. */
  checkHealth(timeoutMs?: number): Promise<void>;
  close(): void;
}

interface HealthClient extends Client {
  check(req: { service: string }, options: { deadline: Date }, cb: (err: Error | null, res?: { status: string }) => void): unknown;
}

/** Connects to digest at `address` (host:port); calls time out after `timeoutMs`. */
export function createDigestClient(address: string, timeoutMs: number, maxMessageBytes = 16 * 1024 * 1024): DigestApi {
  const proto = loadDigestProto();
  const client = new proto.bil.digest.v1.DigestService(address, credentials.createInsecure(), {
    ...clientOptions,
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  });
  const HealthCtor = makeClientConstructor(healthService as unknown as ServiceDefinition, 'grpc.health.v1.Health');
  const health = new HealthCtor(address, credentials.createInsecure(), { channelOverride: client.getChannel() }) as unknown as HealthClient;
  const settings = { timeoutMs };
  const c: DigestServiceClient = client;
  return {
    getDigestKey: (req) => callUnary(c, c.GetDigestKey, req, settings),
    getDigestPolicy: (req) => callUnary(c, c.GetDigestPolicy, req, settings),
    setDigestPolicy: (req) => callUnary(c, c.SetDigestPolicy, req, settings),
    requestDigest: (req) => callUnary(c, c.RequestDigest, req, settings),
    getDigest: (req) => callUnary(c, c.GetDigest, req, settings),
    checkHealth: (ms = 2000) =>
      new Promise<void>((resolve, reject) => {
        health.check({ service: '' }, { deadline: new Date(Date.now() + ms) }, (err, res) => {
          if (err) reject(fromServiceError(err));
          else if (res?.status !== 'SERVING') reject(new AppError('unavailable', 'service_unavailable', `digest is ${res?.status ?? 'unknown'}`));
          else resolve();
        });
      }),
    close: () => {
      health.close();
      client.close();
    },
  };
}
