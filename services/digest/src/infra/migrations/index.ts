// The migrations of the digest schema, in order (an explicit list: no file globbing at run time).
import type { MigrationEntry } from '@bil/runtime';
import { Migration20261127000001 } from './Migration20261127000001.js';
import { Migration20261127000002 } from './Migration20261127000002.js';
import { Migration20261203000001 } from './Migration20261203000001.js';
import { Migration20261230000001 } from './Migration20261230000001.js';

export const migrations: MigrationEntry[] = [
  { name: 'Migration20261127000001', class: Migration20261127000001 },
  { name: 'Migration20261127000002', class: Migration20261127000002 },
  { name: 'Migration20261203000001', class: Migration20261203000001 },
  { name: 'Migration20261230000001', class: Migration20261230000001 },
];
