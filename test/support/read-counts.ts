import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely'

/**
 * Counts how often code reads each property of the rows it is handed, so a test can tell code
 * that looks at each row a few times from code that scans every row once per group (rounds ×
 * rows) without timing anything. Rows come counted from the database through `plugin`
 * (`db.withPlugin(counter.plugin)`), or from anywhere else through `wrap`.
 */
export class ReadCounter {
  /** statements run through `plugin` */
  queries = 0
  /** rows handed out, by the database and by `wrap` */
  rows = 0
  readonly #reads = new Map<string, number>()
  /** per property, how many handed-out rows have it */
  readonly #held = new Map<string, number>()

  /** A Kysely plugin: counts each statement run (a subquery is part of its statement), and hands back every result row counted. */
  readonly plugin: KyselyPlugin = {
    transformQuery: (args: PluginTransformQueryArgs): RootOperationNode => args.node,
    transformResult: async (args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> => {
      this.queries++
      return { ...args.result, rows: this.wrap(args.result.rows) }
    }
  }

  /** The same rows, each behind a proxy that counts reads of its own properties. */
  wrap<T extends object> (rows: T[]): T[] {
    return rows.map((row) => {
      this.rows++
      for (const key of Object.keys(row)) this.#held.set(key, (this.#held.get(key) ?? 0) + 1)
      return new Proxy(row, {
        get: (target, property, receiver) => {
          if (typeof property === 'string' && Object.hasOwn(target, property)) this.#reads.set(property, (this.#reads.get(property) ?? 0) + 1)
          return Reflect.get(target, property, receiver)
        }
      })
    })
  }

  /** Reads of `property` over every row that has it. */
  readsOf (property: string): number {
    return this.#reads.get(property) ?? 0
  }

  /** The property read most often per row that holds it, and how often: a few for code linear in its rows. */
  mostReadsPerRow (): { property: string, perRow: number } {
    let most = { property: '(none)', perRow: 0 }
    for (const [property, reads] of this.#reads) {
      const perRow = reads / (this.#held.get(property) ?? 1)
      if (perRow > most.perRow) most = { property, perRow }
    }
    return most
  }
}
