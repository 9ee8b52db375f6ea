export * from "./constants.js";
export { ByteBuffer, ByteReader } from "./bytes.js";
export {
  writeUvarint,
  writeZigzag,
  readUvarint,
  readZigzag,
  putZigzag,
  getUvarint,
  getZigzag,
  varintResult,
  zigzagSize,
  uvarintSize,
  zigzagEncode,
  zigzagDecode,
  writeUvarintBig,
  readUvarintBig,
  writeZigzagBig,
  readZigzagBig,
  zigzagEncodeBig,
  zigzagDecodeBig,
} from "./varint.js";
export { bitLength, forSize, writeFor, readFor } from "./bitpack.js";
export { toDecimal, fromDecimal, decimalResult, NOT_DECIMAL } from "./decimal.js";
export { nearestDelta } from "./nearest.js";
export { encodeInt64s, decodeInt64s, decodeInt64sNear, isIntEncoding, MAX_SAFE, progression } from "./int64s.js";
export type { IntervalGrid } from "./int64s.js";
export { encodeTimestamps, decodeTimestamps, decodeTimestampsNear, timestampsProgression } from "./timestamps.js";
export { encodeValues, decodeValues, isValuesEncoding } from "./values.js";
export type { EncodeValuesOptions } from "./values.js";
export {
  lz4Compress,
  lz4CompressAsync,
  lz4Decompress,
  lz4DeclaredSize,
  snappyEncode,
  snappyDecode,
  snappyDeclaredSize,
  DEFAULT_MAX_SNAPPY_SIZE,
} from "./compress.js";
export { SnappyBlockDecoder } from "./snappy-block.js";
