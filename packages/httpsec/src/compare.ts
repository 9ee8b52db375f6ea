import { createHash, timingSafeEqual } from "node:crypto";

/** SHA-256 of a credential: what is kept in memory and compared, never the credential itself. */
export function credentialDigest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/**
 * Compares two credentials in time that depends on neither their content nor their length:
 * both are hashed to 32 bytes first, then compared with crypto.timingSafeEqual.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  return timingSafeEqual(credentialDigest(a), credentialDigest(b));
}

/** Compares a digest from credentialDigest with a kept one, in constant time. */
export function digestEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
