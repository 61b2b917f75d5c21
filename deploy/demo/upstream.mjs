// The demo's protected application: a page showing the identity sso-proxy passed in headers.
//
// Usage: node deploy/demo/upstream.mjs [PORT]   (default 4191; binds 127.0.0.1)
//   GET /            HTML page: identity headers, then every request header
//   GET /api/whoami  the same as JSON
// Prints `READY http://127.0.0.1:<port>` once listening.

import * as http from 'node:http';

const port = Number(process.argv[2] ?? process.env.APP_PORT ?? 4191);

const IDENTITY = [
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-forwarded-name',
  'x-forwarded-groups',
  'x-forwarded-access-token',
  'x-sso-identity',
];

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function rows(pairs) {
  return pairs
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v === undefined ? '<i>absent</i>' : esc(v)}</td></tr>`)
    .join('\n');
}

function page(req) {
  const identity = IDENTITY.map((h) => [h, req.headers[h]]);
  const all = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    all.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
  }
  const user = req.headers['x-forwarded-user'];
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>sso-proxy demo app</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:2em}th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #ddd;vertical-align:top}
th{width:18em;font-weight:600}td{font-family:ui-monospace,monospace;word-break:break-all}
form{display:inline}button{padding:.4em 1em}
</style></head><body>
<h1>${user ? `Hello, ${esc(req.headers['x-forwarded-name'] || user)}` : 'No identity received'}</h1>
<p>This page is the protected application. Everything below is what it received from sso-proxy.</p>
<p>
  <a href="/_sso/userinfo">/_sso/userinfo</a> ·
  <a href="/api/whoami">/api/whoami</a> ·
  <form method="post" action="/_sso/logout"><button type="submit">Sign out</button></form>
</p>
<h2>Identity headers</h2>
<table>${rows(identity)}</table>
<h2>Request</h2>
<table>${rows([['method', req.method], ['url', req.url]])}</table>
<h2>All request headers</h2>
<table>${rows(all)}</table>
</body></html>`;
}

const server = http.createServer((req, res) => {
  const { pathname } = new URL(req.url, 'http://127.0.0.1');
  if (pathname === '/api/whoami') {
    const body = Object.fromEntries(IDENTITY.map((h) => [h, req.headers[h] ?? null]));
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body, null, 2));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(page(req));
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`READY http://127.0.0.1:${server.address().port}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
