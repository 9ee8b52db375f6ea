import { readFileSync } from "node:fs";
import { BadDataError, errorMessage } from "@strata/core";
import { parseAuthConfig, type AuthConfig } from "@strata/proxy";

/** Reads and parses -auth.config; errors name the file (and line, from the parser). */
export function loadAuthConfigFile(path: string): AuthConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new BadDataError(`cannot read -auth.config=${path}: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
  }
  return parseAuthConfig(text, path);
}
