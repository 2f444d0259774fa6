// A pass-through HTTP proxy for the MCP conformance suite, which cannot send an auth header:
// listens on 127.0.0.1:$LISTEN_PORT, forwards to 127.0.0.1:$UPSTREAM_PORT adding
// `Authorization: Bearer $BEARER` when the request has none. A Host or Origin naming the proxy is
// rewritten to the upstream (any other Host passes untouched, so DNS-rebinding checks still
// reach the server); responses, event streams included, are piped back as they come.
import http from 'node:http';

const listen = Number(process.env.LISTEN_PORT);
const upstream = Number(process.env.UPSTREAM_PORT);
const bearer = process.env.BEARER;
http
  .createServer((req, res) => {
    const headers = { ...req.headers };
    if (!headers.authorization) headers.authorization = `Bearer ${bearer}`;
    for (const h of ['host', 'origin']) {
      if (headers[h]) headers[h] = headers[h].replace(`:${listen}`, `:${upstream}`);
    }
    const up = http.request(
      { host: '127.0.0.1', port: upstream, method: req.method, path: req.url, headers },
      (ur) => {
        res.writeHead(ur.statusCode, ur.headers);
        res.flushHeaders?.();
        ur.pipe(res);
      },
    );
    up.on('error', (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    req.pipe(up);
    res.on('close', () => up.destroy());
  })
  .listen(listen, '127.0.0.1', () => console.log(`proxy on ${listen}`));
