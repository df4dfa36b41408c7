// The gateway's view of the chat service: one typed async method per RPC of
// bil.chat.v1.ChatService, each with a deadline and the request's correlation
// id (runtime callUnary), failing with the AppError chat sent (its code and
// JSON details, e.g. `mismatched_devices` with the missing and extra devices).
// Routes depend on the ChatApi interface, so tests can start the app against a stub.
import { credentials } from '@grpc/grpc-js';
import { callUnary, clientOptions, type ServiceAuth } from '@bil/runtime';
import { healthOf } from './grpc-health.js';
import { loadChatProto } from '@bil/proto';
import type { ChatServiceClient } from '@bil/proto/gen/bil/chat/v1/ChatService';
import type { CreatePersonalChatRequest } from '@bil/proto/gen/bil/chat/v1/CreatePersonalChatRequest';
import type { CreatePersonalChatResponse__Output } from '@bil/proto/gen/bil/chat/v1/CreatePersonalChatResponse';
import type { CreateGroupRequest } from '@bil/proto/gen/bil/chat/v1/CreateGroupRequest';
import type { CreateGroupResponse__Output } from '@bil/proto/gen/bil/chat/v1/CreateGroupResponse';
import type { GetChatRequest } from '@bil/proto/gen/bil/chat/v1/GetChatRequest';
import type { GetChatResponse__Output } from '@bil/proto/gen/bil/chat/v1/GetChatResponse';
import type { ListChatsRequest } from '@bil/proto/gen/bil/chat/v1/ListChatsRequest';
import type { ListChatsResponse__Output } from '@bil/proto/gen/bil/chat/v1/ListChatsResponse';
import type { AddMembersRequest } from '@bil/proto/gen/bil/chat/v1/AddMembersRequest';
import type { AddMembersResponse__Output } from '@bil/proto/gen/bil/chat/v1/AddMembersResponse';
import type { RemoveMemberRequest } from '@bil/proto/gen/bil/chat/v1/RemoveMemberRequest';
import type { RemoveMemberResponse__Output } from '@bil/proto/gen/bil/chat/v1/RemoveMemberResponse';
import type { ChangeRoleRequest } from '@bil/proto/gen/bil/chat/v1/ChangeRoleRequest';
import type { ChangeRoleResponse__Output } from '@bil/proto/gen/bil/chat/v1/ChangeRoleResponse';
import type { DeleteChatRequest } from '@bil/proto/gen/bil/chat/v1/DeleteChatRequest';
import type { DeleteChatResponse__Output } from '@bil/proto/gen/bil/chat/v1/DeleteChatResponse';
import type { PublishEpochRequest } from '@bil/proto/gen/bil/chat/v1/PublishEpochRequest';
import type { PublishEpochResponse__Output } from '@bil/proto/gen/bil/chat/v1/PublishEpochResponse';
import type { AddEpochKeysRequest } from '@bil/proto/gen/bil/chat/v1/AddEpochKeysRequest';
import type { AddEpochKeysResponse__Output } from '@bil/proto/gen/bil/chat/v1/AddEpochKeysResponse';
import type { ListEpochsRequest } from '@bil/proto/gen/bil/chat/v1/ListEpochsRequest';
import type { ListEpochsResponse__Output } from '@bil/proto/gen/bil/chat/v1/ListEpochsResponse';
import type { SendMessageRequest } from '@bil/proto/gen/bil/chat/v1/SendMessageRequest';
import type { SendMessageResponse__Output } from '@bil/proto/gen/bil/chat/v1/SendMessageResponse';
import type { ListMessagesRequest } from '@bil/proto/gen/bil/chat/v1/ListMessagesRequest';
import type { ListMessagesResponse__Output } from '@bil/proto/gen/bil/chat/v1/ListMessagesResponse';
import type { MarkReadRequest } from '@bil/proto/gen/bil/chat/v1/MarkReadRequest';
import type { MarkReadResponse__Output } from '@bil/proto/gen/bil/chat/v1/MarkReadResponse';
import type { GetUnreadRequest } from '@bil/proto/gen/bil/chat/v1/GetUnreadRequest';
import type { GetUnreadResponse__Output } from '@bil/proto/gen/bil/chat/v1/GetUnreadResponse';
import type { DeleteMessageRequest } from '@bil/proto/gen/bil/chat/v1/DeleteMessageRequest';
import type { DeleteMessageResponse__Output } from '@bil/proto/gen/bil/chat/v1/DeleteMessageResponse';
import type { SetDisappearingTimerRequest } from '@bil/proto/gen/bil/chat/v1/SetDisappearingTimerRequest';
import type { SetDisappearingTimerResponse__Output } from '@bil/proto/gen/bil/chat/v1/SetDisappearingTimerResponse';

export type { Chat__Output as Chat } from '@bil/proto/gen/bil/chat/v1/Chat';
export type { Member__Output as Member } from '@bil/proto/gen/bil/chat/v1/Member';
export type { Message__Output as Message } from '@bil/proto/gen/bil/chat/v1/Message';
export type { EpochRecord__Output as EpochRecord } from '@bil/proto/gen/bil/chat/v1/EpochRecord';
export type { UnreadChat__Output as UnreadChat } from '@bil/proto/gen/bil/chat/v1/UnreadChat';

/** What the gateway asks of the chat service. */
export interface ChatApi {
  createPersonalChat(req: CreatePersonalChatRequest): Promise<CreatePersonalChatResponse__Output>;
  createGroup(req: CreateGroupRequest): Promise<CreateGroupResponse__Output>;
  getChat(req: GetChatRequest): Promise<GetChatResponse__Output>;
  listChats(req: ListChatsRequest): Promise<ListChatsResponse__Output>;
  addMembers(req: AddMembersRequest): Promise<AddMembersResponse__Output>;
  removeMember(req: RemoveMemberRequest): Promise<RemoveMemberResponse__Output>;
  changeRole(req: ChangeRoleRequest): Promise<ChangeRoleResponse__Output>;
  deleteChat(req: DeleteChatRequest): Promise<DeleteChatResponse__Output>;
  publishEpoch(req: PublishEpochRequest): Promise<PublishEpochResponse__Output>;
  addEpochKeys(req: AddEpochKeysRequest): Promise<AddEpochKeysResponse__Output>;
  listEpochs(req: ListEpochsRequest): Promise<ListEpochsResponse__Output>;
  sendMessage(req: SendMessageRequest): Promise<SendMessageResponse__Output>;
  listMessages(req: ListMessagesRequest): Promise<ListMessagesResponse__Output>;
  markRead(req: MarkReadRequest): Promise<MarkReadResponse__Output>;
  getUnread(req: GetUnreadRequest): Promise<GetUnreadResponse__Output>;
  deleteMessage(req: DeleteMessageRequest): Promise<DeleteMessageResponse__Output>;
  setDisappearingTimer(req: SetDisappearingTimerRequest): Promise<SetDisappearingTimerResponse__Output>;
  /** Resolves when chat's grpc.health.v1 check answers SERVING. */
  checkHealth(timeoutMs?: number): Promise<void>;
  close(): void;
}


/**
 * Connects to chat at `address` (host:port); calls time out after `timeoutMs`.
 * Epoch records of large groups are big, so messages up to `maxMessageBytes`
 * are allowed both ways.
 */
export function createChatClient(address: string, timeoutMs: number, auth: ServiceAuth, maxMessageBytes = 16 * 1024 * 1024): ChatApi {
  const proto = loadChatProto();
  const client = new proto.bil.chat.v1.ChatService(address, credentials.createInsecure(), auth.clientOptions('chat', {
    ...clientOptions,
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
  }));
  const lifecycle = healthOf('chat', address, client);
  const settings = { timeoutMs };
  const c: ChatServiceClient = client;

  return {
    createPersonalChat: (req) => callUnary(c, c.CreatePersonalChat, req, settings),
    createGroup: (req) => callUnary(c, c.CreateGroup, req, settings),
    getChat: (req) => callUnary(c, c.GetChat, req, settings),
    listChats: (req) => callUnary(c, c.ListChats, req, settings),
    addMembers: (req) => callUnary(c, c.AddMembers, req, settings),
    removeMember: (req) => callUnary(c, c.RemoveMember, req, settings),
    changeRole: (req) => callUnary(c, c.ChangeRole, req, settings),
    deleteChat: (req) => callUnary(c, c.DeleteChat, req, settings),
    publishEpoch: (req) => callUnary(c, c.PublishEpoch, req, settings),
    addEpochKeys: (req) => callUnary(c, c.AddEpochKeys, req, settings),
    listEpochs: (req) => callUnary(c, c.ListEpochs, req, settings),
    sendMessage: (req) => callUnary(c, c.SendMessage, req, settings),
    listMessages: (req) => callUnary(c, c.ListMessages, req, settings),
    markRead: (req) => callUnary(c, c.MarkRead, req, settings),
    getUnread: (req) => callUnary(c, c.GetUnread, req, settings),
    deleteMessage: (req) => callUnary(c, c.DeleteMessage, req, settings),
    setDisappearingTimer: (req) => callUnary(c, c.SetDisappearingTimer, req, settings),
    ...lifecycle,
  };
}
