// HTTP/2 test server for tether's fixtures (tests/servers/node_h2.py starts it).
// Usage: MAX_REQ=3 MAX_STREAMS=2 IDLE_MS=2000 node h2server.js TLS_PORT H2C_PORT
// (run in a directory holding server.key and server.pem). Every path answers 200
// "hello conn=C req=N"; "?sleep=MS" delays the response. Stdout, one line per event:
//   listening tls=P h2c=Q | conn C open | conn C req N METHOD PATH
//   conn C error CODE | conn C closed after N req
// MAX_REQ: GOAWAY(NO_ERROR) after the Nth response. MAX_STREAMS: SETTINGS value; more
// streams get GOAWAY. IDLE_MS: GOAWAY then close when the session is idle that long.
'use strict';
const http2 = require('http2'), fs = require('fs');
const [tlsPort, h2cPort] = process.argv.slice(2).map(Number);
const MAX_REQ = +(process.env.MAX_REQ || 0), IDLE_MS = +(process.env.IDLE_MS || 0);
const settings = { maxConcurrentStreams: +(process.env.MAX_STREAMS || 100) };
let conns = 0;
function onSession(session) {
  const id = ++conns; let n = 0;
  console.log(`conn ${id} open`);
  session.on('close', () => console.log(`conn ${id} closed after ${n} req`));
  // Without these handlers a client breaking the stream limit crashes node.
  session.on('error', (e) => console.log(`conn ${id} error ${e.code}`));
  if (IDLE_MS) session.setTimeout(IDLE_MS, () => session.close());
  session.on('stream', (stream, headers) => {
    const req = ++n, last = MAX_REQ && req >= MAX_REQ;
    stream.on('error', () => {});
    console.log(`conn ${id} req ${req} ${headers[':method']} ${headers[':path']}`);
    const url = new URL(headers[':path'], 'http://x');
    const delay = Math.min(+(url.searchParams.get('sleep') || 0), 10000);
    stream.resume(); // discard any request body
    setTimeout(() => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'x-conn': String(id), 'x-req': String(req) });
      stream.end(`hello conn=${id} req=${req}\n`);
      if (last) session.close();
    }, delay);
  });
}
const opts = {
  key: fs.readFileSync('server.key'), cert: fs.readFileSync('server.pem'), allowHTTP1: true, settings,
};
// Without an http/1.1 handler an http/1.1 client over TLS would hang.
const h1 = (req, res) => { if (req.httpVersionMajor === 1) res.end('hello http/1.1\n'); };
let listening = 0;
const ready = () => { if (++listening === 2) console.log(`listening tls=${tlsPort} h2c=${h2cPort}`); };
for (const server of [
  http2.createSecureServer(opts, h1).listen(tlsPort, '127.0.0.1', ready),
  http2.createServer({ settings }).listen(h2cPort, '127.0.0.1', ready),
]) {
  server.on('session', onSession);
  server.on('error', (e) => { console.log(`server error ${e.code}`); process.exit(1); });
}
process.on('SIGTERM', () => process.exit(0));
