// The generic plan of a statement: what PostgreSQL runs for a prepared
// statement planned without its values (runtime's Database.pipelined forces
// it; a named statement switches to it after five runs when it looks no
// dearer). Plan tests check it beside the plan for given values, since a hot
// statement must be index-bound either way.

/** A @bil/runtime Database: statements of one transaction run on one connection. */
interface Transactional {
  tx<T>(fn: (tx: { query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]> }) => Promise<T>): Promise<T>;
}

/**
 * `EXPLAIN (FORMAT JSON)` (with `analyze`: run as well) of `text`, whose
 * parameters are `$1…`, as its generic plan, executed with `values` (test
 * constants: strings are quoted, numbers written as they are). Answers the
 * plan's root node.
 */
export async function explainGenericPlan<Node = Record<string, unknown>>(
  db: Transactional,
  text: string,
  values: ReadonlyArray<string | number>,
  opts: { analyze?: boolean } = {},
): Promise<Node> {
  const literals = values.map((v) => (typeof v === 'number' ? String(v) : `'${v.replaceAll("'", "''")}'`)).join(', ');
  return db.tx(async (tx) => {
    await tx.query(`SET LOCAL plan_cache_mode = force_generic_plan`);
    await tx.query(`PREPARE generic_plan_check AS ${text}`);
    const [row] = await tx.query<{ 'QUERY PLAN': Array<{ Plan: Node }> }>(
      `EXPLAIN (${opts.analyze ? 'ANALYZE, ' : ''}FORMAT JSON) EXECUTE generic_plan_check(${literals})`,
    );
    await tx.query(`DEALLOCATE generic_plan_check`);
    return row!['QUERY PLAN'][0]!.Plan;
  });
}
