export { Table, Snapshot, type TableOptions } from "./table.js";
export { Cursor, PartSeek } from "./cursor.js";
export { compareBytes, hasPrefix, prefixEnd } from "../bytes.js";
export type { KindSizes } from "./part.js";
