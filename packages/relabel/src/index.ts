export * from "./config.js";
export * from "./relabel.js";
export { SeriesSelector } from "./selector.js";
export { expandTemplate } from "./expand.js";
export type { Captures } from "./expand.js";
