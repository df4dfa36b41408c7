import { Migration } from '@mikro-orm/migrations';
import { streamStateVersionSql } from '@bil/runtime';

/**
 * Step 12 (issue #15): each stored stream state carries the version of the
 * decider's state it was written under (`state_version`, 1 for every row
 * before). EventStore.load rebuilds a state stored under another version
 * than its decider's `stateVersion` from the stream's events (evolve) and
 * stores it again, so a decider can change its state's shape.
 */
export class Migration20261230000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(streamStateVersionSql('chat'));
  }
}
