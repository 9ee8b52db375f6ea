// A remote write receiver that reads each body and answers 204 (the benchmark's sink).
import { createServer } from "node:http";
let bytes = 0;
let requests = 0;
createServer((req, res) => {
  req.on("data", (c) => (bytes += c.length));
  req.on("end", () => {
    requests++;
    if (req.url === "/stats") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ bytes, requests }));
      return;
    }
    res.writeHead(204);
    res.end();
  });
}).listen(Number(process.argv[2]), "127.0.0.1", () => process.stdout.write("ready\n"));
