import { BadDataError } from "@strata/core";

/** The one error every decoder throws on malformed input. */
export function corrupt(what: string, offset?: number): BadDataError {
  const where = offset === undefined ? "" : ` at byte ${offset}`;
  return new BadDataError(`corrupt encoded data: ${what}${where}`, "STRATA_CORRUPT_DATA");
}
