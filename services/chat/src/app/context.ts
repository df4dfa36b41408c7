// What every chat use case is given: the database, the event store, the
// settings and the clock, plus the small types and helpers they share.
import { notFound, type Clock, type Database, type EventMetadata, type EventStore } from '@bil/runtime';
import type { Role } from '../domain/chat/chat.js';

export interface Actor {
  userId: string;
  deviceId: string;
  sessionId: string;
}

export interface ChatSettings {
  maxGroupMembers: number;
  /** The byte budget of a page of messages (default MAX_PAGE_BYTES; tests lower it). */
  maxPageBytes?: number;
}

export interface MemberInput {
  userId: unknown;
  role: Role | undefined;
}

/** The dependencies of the command and query modules (ChatApp builds one). */
export interface ChatDeps {
  db: Database;
  store: EventStore;
  settings: ChatSettings;
  clock: Clock;
}

export const chatNotFound = () => notFound('chat_not_found', 'no such chat');

/** The clock's time as the ISO text commands carry. */
export const nowIso = (deps: Pick<ChatDeps, 'clock'>): string => deps.clock.now().toISOString();

export function meta(actor: Actor): EventMetadata {
  return { actorUserId: actor.userId, actorDeviceId: actor.deviceId };
}
