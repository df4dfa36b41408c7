import { Migration } from '@mikro-orm/migrations';
import { processedEventsTrimIndexSql } from '@bil/runtime';

/** The index the durable consumers use to forget processed event ids past their retention. */
export class Migration20261126000002 extends Migration {
  override async up(): Promise<void> {
    this.addSql(processedEventsTrimIndexSql('chat'));
  }
}
