/**
 * @strata/storage — one storage node's durable store (DESIGN.md §4).
 *
 * The public API is the `Storage` class (see README.md). The inverted index lives in
 * ./indexdb (INDEX engineer), the data path (WAL, parts, merges, search) everywhere else.
 */
export {};
