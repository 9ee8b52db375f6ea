import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";

/**
 * Answers a request the HTTP parser refused (oversized headers or URL: 431, a timeout: 408,
 * anything else: 400) the way Node does: with `Connection: close`, then closes the socket.
 * fastify's own handler leaves that header out and drops the socket, so a keep-alive client
 * puts the connection back in its pool and sends its next request into a closed socket
 * (ECONNRESET, "socket hang up").
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  const body = status === 431 ? "request headers or URL too large\n" : `${STATUS_CODES[status] ?? ""}\n`;
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  socket.destroy();
}
