import { flag } from "@strata/core";

/** Flags of the import endpoints, Graphite listener and relabeling (merged into insertFlags). */
export const importFlags = {
  relabelConfig: flag.string(
    "",
    "Path to a file with relabel_configs applied to every incoming series of every protocol (remote write and imports). Reloaded on SIGHUP; a bad file keeps the old rules.",
  ),
  graphiteListenAddr: flag.string("", "TCP address for Graphite plaintext (e.g. :2003). Empty: off."),
  "graphite.tenant": flag.string("0", "Tenant (accountID[:projectID]) that data received on -graphiteListenAddr is stored under."),
  "import.maxRequestSize": flag.bytes(
    4 * 1024 * 1024 * 1024,
    "Maximum decompressed size of one import body (/api/v1/import*, influx, opentsdb); 413 past it. Bodies are parsed as streams: memory does not grow with this.",
  ),
  "import.maxLineLen": flag.bytes(16 * 1024 * 1024, "Longest accepted line of a line-based import format (JSON lines, text exposition, CSV, Influx, Graphite)."),
  "import.memoryBufferSize": flag.bytes(
    4 * 1024 * 1024,
    "Parsed rows one import request keeps in memory; beyond this they are spooled to an unlinked temp file until the whole body has parsed (a request is stored whole or not at all).",
  ),
  "import.tmpDataPath": flag.string("", "Directory for the spool files of large imports. Empty: the OS temp directory."),
  "opentsdbhttp.maxInsertRequestSize": flag.bytes(32 * 1024 * 1024, "Maximum size of an /opentsdb/api/put body (one JSON document, parsed whole)."),
};
