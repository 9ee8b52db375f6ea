import { readFileSync } from "node:fs";
import { BadDataError, errorMessage } from "@strata/core";

/**
 * A secret given on the command line either literally or as `file:///path` (VictoriaMetrics'
 * convention), so that it need not appear in `ps` output, unit files or shell history. The
 * file's content without its trailing newline is the secret. Errors name the flag and the file,
 * never the secret.
 */
export function readSecret(flagName: string, value: string): string {
  if (!value.startsWith("file://")) return value;
  const path = value.slice("file://".length);
  if (!path.startsWith("/")) {
    throw new BadDataError(`-${flagName}: want file:///absolute/path, got a relative path after file://`, "STRATA_INVALID_FLAG");
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new BadDataError(`-${flagName}: cannot read the secret file ${path}: ${errorMessage(err)}`, "STRATA_INVALID_FLAG");
  }
  return text.replace(/\r?\n$/, "");
}
