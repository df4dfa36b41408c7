// What the read models' queries share: page byte budgets, page tokens over
// (last activity, chat id), unread arithmetic, timestamps as ISO text.
import { invalidArgument } from '@bil/runtime';
import { validateUuid } from '../../domain/validation.js';
import type { ChatSettings } from '../context.js';

/**
 * The byte budget of one ListMessages page: the envelopes and wrapped keys of
 * a page add up to at most this (each row counted with ROW_OVERHEAD_BYTES for
 * its other fields), the first row always included. Well under the 8 MiB a
 * gRPC client of chat accepts (runtime clientOptions), whatever the count.
 */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024;
export const ROW_OVERHEAD_BYTES = 512;

export const maxPageBytes = (settings: ChatSettings): number => settings.maxPageBytes ?? MAX_PAGE_BYTES;

export const iso = (d: Date | string) => new Date(d).toISOString();

export function unreadOf(lastSeq: number, lastRead: number, joinedSeq: number): number {
  return Math.max(0, lastSeq - Math.max(lastRead, joinedSeq));
}

export function pageToken(r: { last_activity_at: Date; chat_id: string }): string {
  return Buffer.from(JSON.stringify([iso(r.last_activity_at), r.chat_id])).toString('base64url');
}

export function parsePageToken(raw: unknown): [string, string] | null {
  if (raw === undefined || raw === '') return null;
  try {
    const [at, id] = JSON.parse(Buffer.from(String(raw), 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof at === 'string' && !Number.isNaN(Date.parse(at)) && typeof id === 'string') return [at, validateUuid(id, 'page_token')];
  } catch {
    // fall through
  }
  throw invalidArgument('invalid_page_token', 'page_token is not one this service issued', { field: 'page_token' });
}
