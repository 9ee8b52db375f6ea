import { createLogger, type Logger } from "@strata/core";

const loggers = new Map<string, Logger>();

/**
 * The pino logger of an engine component opened without an error callback (the storage service
 * passes its own): one per component name, made on first use.
 */
export function defaultLog(name: string): Logger {
  let log = loggers.get(name);
  if (log === undefined) {
    log = createLogger({ name });
    loggers.set(name, log);
  }
  return log;
}
