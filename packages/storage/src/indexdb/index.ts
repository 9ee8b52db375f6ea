export {
  IndexDB,
  type IndexDBOptions,
  type WritePathCache,
  type TsdbStatus,
  type TsdbStatusEntry,
  type TsdbStatusRequest,
  type TSID,
  TSID_SIZE,
  compareTSID,
  decodeTSID,
  encodeTSID,
} from "./indexdb.js";
export type { IdSet } from "./idset.js";
