// The migrations of the chat schema, in order (an explicit list: no file globbing at run time).
import type { MigrationEntry } from '@bil/runtime';
import { Migration20261126000001 } from './Migration20261126000001.js';
import { Migration20261126000002 } from './Migration20261126000002.js';
import { Migration20261210000001 } from './Migration20261210000001.js';
import { Migration20261220000001 } from './Migration20261220000001.js';
import { Migration20261230000001 } from './Migration20261230000001.js';
import { Migration20261231000001 } from './Migration20261231000001.js';
import { Migration20270101000001 } from './Migration20270101000001.js';
import { Migration20270101000010 } from './Migration20270101000010.js';
import { Migration20270101000011 } from './Migration20270101000011.js';

export const migrations: MigrationEntry[] = [
  { name: 'Migration20261126000001', class: Migration20261126000001 },
  { name: 'Migration20261126000002', class: Migration20261126000002 },
  { name: 'Migration20261210000001', class: Migration20261210000001 },
  { name: 'Migration20261220000001', class: Migration20261220000001 },
  { name: 'Migration20261230000001', class: Migration20261230000001 },
  { name: 'Migration20261231000001', class: Migration20261231000001 },
  { name: 'Migration20270101000001', class: Migration20270101000001 },
  { name: 'Migration20270101000010', class: Migration20270101000010 },
  { name: 'Migration20270101000011', class: Migration20270101000011 },
];
