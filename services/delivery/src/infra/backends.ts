// Delivery's view of the other services: identity for the token keys (JWKS)
// and chat for catch-up and membership, each call with a deadline and the
// correlation id (runtime callUnary). Every chat call acts as a device, so
// chat applies its own authorisation: a device only ever gets what it may see.
import { credentials } from '@grpc/grpc-js';
import { callUnary, clientOptions, type ServiceAuth } from '@bil/runtime';
import { loadChatProto, loadIdentityProto } from '@bil/proto';
import type { Actor } from '@bil/proto/gen/bil/chat/v1/Actor';
import type { Chat__Output } from '@bil/proto/gen/bil/chat/v1/Chat';
import type { Message__Output } from '@bil/proto/gen/bil/chat/v1/Message';
import type { ListChatsResponse__Output } from '@bil/proto/gen/bil/chat/v1/ListChatsResponse';
import type { ListMessagesResponse__Output } from '@bil/proto/gen/bil/chat/v1/ListMessagesResponse';
import type { CatchUpMessagesResponse__Output } from '@bil/proto/gen/bil/chat/v1/CatchUpMessagesResponse';
import type { GetChatResponse__Output } from '@bil/proto/gen/bil/chat/v1/GetChatResponse';
import type { GetJwksResponse__Output } from '@bil/proto/gen/bil/identity/v1/GetJwksResponse';

export type { Actor };
export type ChatSummary = Pick<Chat__Output, 'chatId' | 'type' | 'lastSeq'>;
export type StoredMessage = Message__Output;

/** What delivery asks of the chat service. */
export interface ChatBackend {
  listChats(actor: Actor, pageToken: string, limit: number): Promise<{ chats: ChatSummary[]; nextPageToken: string }>;
  listMessagesAfter(actor: Actor, chatId: string, afterSeq: number, limit: number): Promise<{ messages: StoredMessage[]; hasMore: boolean; lastSeq: number }>;
  /**
   * One page of a chat's history for many devices at once (a reconnect
   * storm): each message once, with the indexes of the devices that get it
   * and their keys; read the next page after `throughSeq` while `hasMore`.
   */
  catchUpMessages(
    chatId: string,
    devices: ReadonlyArray<{ userId: string; deviceId: string; afterSeq: number }>,
    limit: number,
  ): Promise<{ messages: Array<{ message: StoredMessage; recipients: Array<{ deviceIndex: number; wrappedKey: string }> }>; hasMore: boolean; throughSeq: number }>;
  /** The chat's type and members (user id → the seq they joined at). */
  getMembers(actor: Actor, chatId: string): Promise<{ type: 'personal' | 'group'; members: Map<string, number> }>;
  close(): void;
}

/** Chat at `address`, every call signed by `auth` (docs/architecture.md, "Service-to-service authentication"). */
export function createChatBackend(address: string, timeoutMs: number, auth: ServiceAuth): ChatBackend {
  const proto = loadChatProto();
  const client = new proto.bil.chat.v1.ChatService(address, credentials.createInsecure(), auth.clientOptions('chat', clientOptions));
  const opts = { timeoutMs };
  return {
    async listChats(actor, pageToken, limit) {
      const res = await callUnary<unknown, ListChatsResponse__Output>(client, client.listChats as never, { actor, type: 'CHAT_TYPE_UNSPECIFIED', limit, pageToken }, opts);
      return { chats: res.chats, nextPageToken: res.nextPageToken };
    },
    async listMessagesAfter(actor, chatId, afterSeq, limit) {
      const res = await callUnary<unknown, ListMessagesResponse__Output>(
        client,
        client.listMessages as never,
        { actor, chatId, afterSeq: String(afterSeq), limit },
        opts,
      );
      return { messages: res.messages, hasMore: res.hasMore, lastSeq: Number(res.lastSeq) };
    },
    async catchUpMessages(chatId, devices, limit) {
      const res = await callUnary<unknown, CatchUpMessagesResponse__Output>(
        client,
        client.catchUpMessages as never,
        { chatId, devices: devices.map((d) => ({ userId: d.userId, deviceId: d.deviceId, afterSeq: String(d.afterSeq) })), limit },
        opts,
      );
      return {
        messages: res.messages.flatMap((m) => (m.message ? [{ message: m.message, recipients: m.recipients }] : [])),
        hasMore: res.hasMore,
        throughSeq: Number(res.throughSeq),
      };
    },
    async getMembers(actor, chatId) {
      const res = await callUnary<unknown, GetChatResponse__Output>(client, client.getChat as never, { actor, chatId }, opts);
      const chat = res.chat;
      const members = new Map<string, number>((chat?.members ?? []).map((m) => [m.userId, Number(m.joinedSeq)]));
      return { type: chat?.type === 'CHAT_TYPE_GROUP' ? 'group' : 'personal', members };
    },
    close: () => client.close(),
  };
}

/** Fetches identity's JWK Set (JSON text) for the access-token verifier. */
export function createJwksSource(address: string, auth: ServiceAuth, timeoutMs = 5000): { fetch: () => Promise<string>; close: () => void } {
  const proto = loadIdentityProto();
  const client = new proto.bil.identity.v1.IdentityService(address, credentials.createInsecure(), auth.clientOptions('identity', clientOptions));
  return {
    fetch: async () => (await callUnary<unknown, GetJwksResponse__Output>(client, client.getJwks as never, {}, { timeoutMs })).jwksJson,
    close: () => client.close(),
  };
}
