// /v1/chats and /v1/unread: chats, members, group epochs, encrypted messages
// and read state, each mapped to one ChatService RPC with the verified actor.
// The chat service decides membership and permissions (a non-member gets 404
// `chat_not_found` for every chat), so these handlers only translate.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '@bil/runtime';
import type { EpochsPageJson, MessagesPageJson, UnreadJson } from '@bil/proto/rest-chat';
import {
  chatJson,
  chatTypeToProto,
  epochJson,
  memberJson,
  messageJson,
  roleToProto,
  unreadChatJson,
  wrappedKeysToProto,
} from '../chat-mappers.js';
import { int64ToNumber } from '../mappers.js';
import {
  addEpochKeysSchema,
  addMembersSchema,
  changeRoleSchema,
  createChatSchema,
  deleteChatSchema,
  deleteMessageSchema,
  setTimerSchema,
  type DeleteMessageBody,
  type MessageParams,
  type SetTimerBody,
  getChatSchema,
  listChatsSchema,
  listEpochsSchema,
  listMessagesSchema,
  markReadSchema,
  publishEpochSchema,
  removeMemberSchema,
  sendMessageSchema,
  unreadSchema,
  type AddEpochKeysBody,
  type AddMembersBody,
  type ChangeRoleBody,
  type ChatParams,
  type CreateChatBody,
  type EpochParams,
  type ListChatsQuery,
  type ListEpochsQuery,
  type ListMessagesQuery,
  type MarkReadBody,
  type MemberParams,
  type PublishEpochBody,
  type RemoveMemberBody,
  type SendMessageBody,
  type UnreadQuery,
} from '../chat-schemas.js';
import { actorOf, inContext, type RouteContext } from './context.js';

const DECIMAL = /^(0|[1-9]\d{0,15})$/;

/**
 * Query strings and path segments arrive as text, and validation never
 * coerces types; this preValidation hook turns the named integer fields that
 * are plain decimals into numbers first, so the schema can check them as
 * integers (anything else stays text and fails as "must be integer").
 */
function integers(part: 'query' | 'params', fields: readonly string[]) {
  return async (request: FastifyRequest): Promise<void> => {
    const values = request[part] as Record<string, unknown> | undefined;
    if (!values) return;
    for (const f of fields) {
      const v = values[f];
      if (typeof v === 'string' && DECIMAL.test(v)) values[f] = Number(v);
    }
  };
}

function invalid(location: string, field: string, reason: string): AppError {
  return new AppError('invalid_argument', 'invalid_request', `${field}: ${reason}`, { location, field, reason });
}

const json = (v: unknown): string => JSON.stringify(v);

export function chatRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { chat } = ctx;
  const auth = { onRequest: ctx.authenticate };
  const epochBody = { bodyLimit: ctx.bodyLimits.epoch };

  app.post<{ Body: CreateChatBody }>('/v1/chats', { schema: createChatSchema, ...auth, ...epochBody }, async (request, reply) => {
    const actor = actorOf(request);
    const body = request.body;
    if (body.type === 'personal') {
      const res = await inContext(request, () => chat.createPersonalChat({ actor, peerUserId: body.peer_user_id }));
      return reply.code(res.created ? 201 : 200).send({ chat: chatJson(res.chat) });
    }
    const res = await inContext(request, () =>
      chat.createGroup({
        actor,
        chatId: body.chat_id,
        title: body.title ?? '',
        members: body.members.map((m) => ({ userId: m.user_id, role: roleToProto(m.role) })),
        epochRecord: json(body.epoch_record),
        epochKeys: wrappedKeysToProto(body.epoch_keys),
      }),
    );
    return reply.code(201).send({ chat: chatJson(res.chat) });
  });

  app.get<{ Querystring: ListChatsQuery }>(
    '/v1/chats',
    { schema: listChatsSchema, ...auth, preValidation: integers('query', ['limit']) },
    async (request) => {
      const q = request.query;
      const res = await inContext(request, () =>
        chat.listChats({ actor: actorOf(request), type: chatTypeToProto(q.type), limit: q.limit ?? 0, pageToken: q.cursor ?? '' }),
      );
      return { chats: res.chats.map(chatJson), next_cursor: res.nextPageToken };
    },
  );

  app.get<{ Params: ChatParams }>('/v1/chats/:chat_id', { schema: getChatSchema, ...auth }, async (request) => {
    const res = await inContext(request, () => chat.getChat({ actor: actorOf(request), chatId: request.params.chat_id }));
    return { chat: chatJson(res.chat) };
  });

  app.delete<{ Params: ChatParams }>('/v1/chats/:chat_id', { schema: deleteChatSchema, ...auth }, async (request, reply) => {
    await inContext(request, () => chat.deleteChat({ actor: actorOf(request), chatId: request.params.chat_id }));
    return reply.code(204).send();
  });

  app.post<{ Params: ChatParams; Body: AddMembersBody }>(
    '/v1/chats/:chat_id/members',
    { schema: addMembersSchema, ...auth, ...epochBody },
    async (request) => {
      const body = request.body;
      const res = await inContext(request, () =>
        chat.addMembers({
          actor: actorOf(request),
          chatId: request.params.chat_id,
          members: body.members.map((m) => ({ userId: m.user_id, role: roleToProto(m.role) })),
          epochRecord: json(body.epoch_record),
          epochKeys: wrappedKeysToProto(body.epoch_keys),
        }),
      );
      return { chat: chatJson(res.chat) };
    },
  );

  app.delete<{ Params: MemberParams; Body: RemoveMemberBody | undefined }>(
    '/v1/chats/:chat_id/members/:user_id',
    {
      schema: removeMemberSchema,
      ...auth,
      ...epochBody,
      // The body is optional at this layer; chat answers leave_required or epoch_required when it needs one.
      preValidation: async (request) => {
        request.body ??= {};
      },
    },
    async (request) => {
      const body = request.body ?? {};
      if ((body.epoch_record === undefined) !== (body.epoch_keys === undefined)) {
        throw invalid('body', body.epoch_record === undefined ? 'epoch_record' : 'epoch_keys', 'epoch_record and epoch_keys go together');
      }
      const res = await inContext(request, () =>
        chat.removeMember({
          actor: actorOf(request),
          chatId: request.params.chat_id,
          userId: request.params.user_id,
          epochRecord: body.epoch_record === undefined ? '' : json(body.epoch_record),
          epochKeys: wrappedKeysToProto(body.epoch_keys),
          leave: body.leave === undefined ? '' : json(body.leave),
        }),
      );
      return { chat_id: res.chatId, epoch: int64ToNumber(res.epoch), epoch_rotation_required: res.epochRotationRequired };
    },
  );

  app.patch<{ Params: MemberParams; Body: ChangeRoleBody }>(
    '/v1/chats/:chat_id/members/:user_id',
    { schema: changeRoleSchema, ...auth },
    async (request) => {
      const res = await inContext(request, () =>
        chat.changeRole({
          actor: actorOf(request),
          chatId: request.params.chat_id,
          userId: request.params.user_id,
          role: roleToProto(request.body.role),
        }),
      );
      return { member: memberJson(res.member) };
    },
  );

  app.get<{ Params: ChatParams; Querystring: ListEpochsQuery }>(
    '/v1/chats/:chat_id/keys',
    { schema: listEpochsSchema, ...auth, preValidation: integers('query', ['after_epoch', 'limit']) },
    async (request): Promise<EpochsPageJson> => {
      const q = request.query;
      const res = await inContext(request, () =>
        chat.listEpochs({ actor: actorOf(request), chatId: request.params.chat_id, afterEpoch: q.after_epoch ?? 0, limit: q.limit ?? 0 }),
      );
      return { epochs: res.epochs.map(epochJson), current_epoch: int64ToNumber(res.currentEpoch), has_more: res.hasMore };
    },
  );

  app.post<{ Params: ChatParams; Body: PublishEpochBody }>(
    '/v1/chats/:chat_id/keys',
    { schema: publishEpochSchema, ...auth, ...epochBody },
    async (request, reply) => {
      const res = await inContext(request, () =>
        chat.publishEpoch({
          actor: actorOf(request),
          chatId: request.params.chat_id,
          epochRecord: json(request.body.epoch_record),
          epochKeys: wrappedKeysToProto(request.body.epoch_keys),
        }),
      );
      return reply.code(201).send({ epoch: int64ToNumber(res.epoch), record_hash: res.recordHash });
    },
  );

  app.post<{ Params: EpochParams; Body: AddEpochKeysBody }>(
    '/v1/chats/:chat_id/keys/:epoch/devices',
    { schema: addEpochKeysSchema, ...auth, ...epochBody, preValidation: integers('params', ['epoch']) },
    async (request) => {
      const res = await inContext(request, () =>
        chat.addEpochKeys({
          actor: actorOf(request),
          chatId: request.params.chat_id,
          epoch: request.params.epoch,
          epochKeys: wrappedKeysToProto(request.body.epoch_keys),
        }),
      );
      return { added: res.added };
    },
  );

  app.post<{ Params: ChatParams; Body: SendMessageBody }>(
    '/v1/chats/:chat_id/messages',
    { schema: sendMessageSchema, ...auth, bodyLimit: ctx.bodyLimits.message },
    async (request, reply) => {
      const body = request.body;
      const res = await inContext(request, () =>
        chat.sendMessage({
          actor: actorOf(request),
          chatId: request.params.chat_id,
          messageId: body.message_id,
          // Re-encoded from the validated object on purpose (one JSON.stringify of
          // ~3 KB, under 1% of a send in the profile): chat stores exactly what was
          // validated, never the raw text, whose duplicate keys or escapes another
          // parser could read differently from the schema check.
          envelope: json(body.envelope),
          wrappedKeys: wrappedKeysToProto(body.wrapped_keys),
          attachmentIds: body.attachment_ids ?? [],
        }),
      );
      return reply.code(res.duplicate ? 200 : 201).send({ seq: int64ToNumber(res.seq), created_at: res.createdAt, duplicate: res.duplicate });
    },
  );

  app.get<{ Params: ChatParams; Querystring: ListMessagesQuery }>(
    '/v1/chats/:chat_id/messages',
    { schema: listMessagesSchema, ...auth, preValidation: integers('query', ['after', 'before', 'limit']) },
    async (request): Promise<MessagesPageJson> => {
      const q = request.query;
      if (q.after !== undefined && q.before !== undefined) throw invalid('querystring', 'before', 'cannot be combined with after');
      const cursor = q.after !== undefined ? { afterSeq: q.after } : q.before !== undefined ? { beforeSeq: q.before } : {};
      const res = await inContext(request, () =>
        chat.listMessages({ actor: actorOf(request), chatId: request.params.chat_id, limit: q.limit ?? 0, ...cursor }),
      );
      return { messages: res.messages.map(messageJson), has_more: res.hasMore, last_seq: int64ToNumber(res.lastSeq) };
    },
  );

  app.delete<{ Params: MessageParams; Body: DeleteMessageBody }>(
    '/v1/chats/:chat_id/messages/:message_id',
    { schema: deleteMessageSchema, ...auth },
    async (request) => {
      const res = await inContext(request, () =>
        chat.deleteMessage({
          actor: actorOf(request),
          chatId: request.params.chat_id,
          messageId: request.params.message_id,
          tombstone: json(request.body.tombstone),
        }),
      );
      return { seq: int64ToNumber(res.seq), deleted: res.deleted };
    },
  );

  app.put<{ Params: ChatParams; Body: SetTimerBody }>('/v1/chats/:chat_id/timer', { schema: setTimerSchema, ...auth }, async (request) => {
    const res = await inContext(request, () =>
      chat.setDisappearingTimer({
        actor: actorOf(request),
        chatId: request.params.chat_id,
        disappearingMs: request.body.disappearing_ms,
        timerStatement: request.body.timer_statement ? json(request.body.timer_statement) : '',
      }),
    );
    return { chat: chatJson(res.chat) };
  });

  app.post<{ Params: ChatParams; Body: MarkReadBody }>('/v1/chats/:chat_id/read', { schema: markReadSchema, ...auth }, async (request) => {
    const res = await inContext(request, () =>
      chat.markRead({ actor: actorOf(request), chatId: request.params.chat_id, seq: request.body.seq }),
    );
    return { last_read_seq: int64ToNumber(res.lastReadSeq), unread_count: int64ToNumber(res.unreadCount) };
  });

  app.get<{ Querystring: UnreadQuery }>(
    '/v1/unread',
    { schema: unreadSchema, ...auth, preValidation: integers('query', ['limit', 'max_envelopes_per_chat']) },
    async (request): Promise<UnreadJson> => {
      const q = request.query;
      const res = await inContext(request, () =>
        chat.getUnread({ actor: actorOf(request), limit: q.limit ?? 0, maxEnvelopesPerChat: q.max_envelopes_per_chat ?? 0, pageToken: q.page_token ?? '' }),
      );
      return {
        total_unread: int64ToNumber(res.totalUnread),
        unread_chats: res.unreadChats ?? 0,
        next_page_token: res.nextPageToken ?? '',
        chats: res.chats.map(unreadChatJson),
      };
    },
  );
}
