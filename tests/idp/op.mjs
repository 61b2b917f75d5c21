// A real OpenID Provider (panva/oidc-provider) for the sso-proxy integration tests and the demo.
//
// Usage: node tests/idp/op.mjs [PORT] [CLIENTS_JSON]
//   PORT          port on 127.0.0.1 (argv[2], else $OP_PORT, else 0 = any free port)
//   CLIENTS_JSON  JSON list of clients (argv[3], else $OP_CLIENTS):
//                 [{"client_id","client_secret","redirect_uris":[...],
//                   "token_endpoint_auth_method"?, "post_logout_redirect_uris"?: [...]}]
//
// Prints exactly one line on stdout once listening: `READY http://127.0.0.1:<port>` (the issuer).
// Everything else (oidc-provider notices, request errors) goes to stderr.
//
// Users (password `<user>-pw`, checked by the login form below):
//   alice  alice@example.com  verified    groups [admins, ml-team]
//   bob    bob@example.com    verified    groups [ml-team]
//   carol  carol@example.com  NOT verified  groups []
// The `sub` of each user is the login name. Consent is granted automatically.
//
// Optional clients' `backchannel_logout_uri` turns on OIDC Back-Channel Logout for that client
// (with `sid`). Token revocation (`/token/revocation`) is always on.
//
// Environment (all optional):
//   OP_ACCESS_TOKEN_TTL=<seconds>   access-token lifetime (default 3600)
//   OP_REFRESHED_ACCESS_TOKEN_TTL=<seconds>  lifetime of access tokens from the refresh grant
//                                   (default: OP_ACCESS_TOKEN_TTL)
//   OP_REFRESH_TOKENS=1             issue refresh tokens without `offline_access`/consent
//   OP_ROTATE_REFRESH_TOKENS=1      rotate the refresh token at every refresh
// Grants, revocations and back-channel logouts are reported on stderr as `EVENT <name> ...`.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

// Keep stdout for the READY line only: oidc-provider prints its notices with console.info.
console.info = (...args) => console.error(...args);
console.log = (...args) => console.error(...args);

const USERS = {
  alice: {
    password: 'alice-pw',
    claims: {
      email: 'alice@example.com',
      email_verified: true,
      name: 'Alice Liddell',
      given_name: 'Alice',
      family_name: 'Liddell',
      preferred_username: 'alice',
      groups: ['admins', 'ml-team'],
    },
  },
  bob: {
    password: 'bob-pw',
    claims: {
      email: 'bob@example.com',
      email_verified: true,
      name: 'Bob Builder',
      given_name: 'Bob',
      family_name: 'Builder',
      preferred_username: 'bob',
      groups: ['ml-team'],
    },
  },
  carol: {
    password: 'carol-pw',
    claims: {
      email: 'carol@example.com',
      email_verified: false,
      name: 'Carol Danvers',
      given_name: 'Carol',
      family_name: 'Danvers',
      preferred_username: 'carol',
      groups: [],
    },
  },
};

function parseArgs() {
  const port = Number(process.argv[2] ?? process.env.OP_PORT ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid port: ${process.argv[2] ?? process.env.OP_PORT}`);
  }
  const raw = process.argv[3] ?? process.env.OP_CLIENTS ?? '[]';
  const list = JSON.parse(raw);
  if (!Array.isArray(list)) throw new Error('clients must be a JSON list');
  const clients = list.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    post_logout_redirect_uris: c.post_logout_redirect_uris ?? [],
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    ...(c.backchannel_logout_uri ? {
      backchannel_logout_uri: c.backchannel_logout_uri,
      backchannel_logout_session_required: true,
    } : {}),
  }));
  return { port, clients };
}

const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;max-width:22em;margin:3em auto}input,button{display:block;width:100%;margin:.4em 0;padding:.4em}.err{color:#b00}</style>
</head><body><h1>${esc(title)}</h1>${body}</body></html>`;
}

function loginForm(uid, clientId, error) {
  return page('Test OP sign-in', `
<p>Signing in to <b>${esc(clientId)}</b>. Users: alice, bob, carol (password: &lt;user&gt;-pw).</p>
${error ? `<p class="err">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <input name="login" placeholder="login" autofocus required>
  <input name="password" type="password" placeholder="password" required>
  <button type="submit">Sign in</button>
</form>`);
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Grant everything the client asked for (what a consent screen with one "Allow" button does).
async function autoConsent(provider, details) {
  const { prompt: { details: missing }, grantId, session, params } = details;
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
  }
  return grant.save();
}

async function handleInteraction(provider, req, res, pathname) {
  const parts = pathname.split('/').filter(Boolean); // ['interaction', uid, ('login')?]
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== parts[1]) {
    send(res, 400, page('Error', '<p>Interaction mismatch.</p>'));
    return;
  }
  const { prompt, params } = details;

  if (req.method === 'POST' && parts[2] === 'login') {
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    const password = form.get('password') ?? '';
    const user = Object.hasOwn(USERS, login) ? USERS[login] : undefined;
    const ok = user !== undefined
      && crypto.timingSafeEqual(
        crypto.createHash('sha256').update(password).digest(),
        crypto.createHash('sha256').update(user.password).digest(),
      );
    if (!ok) {
      send(res, 200, loginForm(details.uid, params.client_id, 'Invalid login or password.'));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: login } }, {
      mergeWithLastSubmission: false,
    });
    return;
  }

  if (req.method === 'GET' && parts.length === 2) {
    if (prompt.name === 'login') {
      send(res, 200, loginForm(details.uid, params.client_id));
      return;
    }
    if (prompt.name === 'consent') {
      const grantId = await autoConsent(provider, details);
      await provider.interactionFinished(req, res, { consent: { grantId } }, {
        mergeWithLastSubmission: true,
      });
      return;
    }
  }
  send(res, 400, page('Error', `<p>Unsupported interaction (${esc(prompt.name)}).</p>`));
}

function buildProvider(issuer, clients) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = {
    ...privateKey.export({ format: 'jwk' }),
    kid: crypto.randomBytes(8).toString('hex'),
    use: 'sig',
    alg: 'RS256',
  };

  const accessTokenTtl = Number(process.env.OP_ACCESS_TOKEN_TTL || 3600);
  const refreshedTtl = Number(process.env.OP_REFRESHED_ACCESS_TOKEN_TTL || accessTokenTtl);
  const refreshTokens = process.env.OP_REFRESH_TOKENS === '1';
  const rotate = process.env.OP_ROTATE_REFRESH_TOKENS === '1';

  return new Provider(issuer, {
    clients,
    ...(refreshTokens ? {
      async issueRefreshToken(ctx, client) {
        return client.grantTypeAllowed('refresh_token');
      },
    } : {}),
    ...(rotate ? { rotateRefreshToken: () => true } : {}),
    // Back-channel logout tokens go to the proxy on 127.0.0.1, which oidc-provider's SSRF guard
    // (a dispatcher refusing special-use addresses) would refuse: everything here is local.
    fetch(url, options) {
      const { dispatcher, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    jwks: { keys: [jwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    async findAccount(ctx, sub) {
      if (!Object.hasOwn(USERS, sub)) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, ...USERS[sub].claims };
        },
      };
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username', 'groups'],
      groups: ['groups'],
    },
    scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
    // Scope claims go into the ID token too (not only userinfo), groups included.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    // PKCE is optional (S256 only: oidc-provider 9 does not implement `plain`).
    pkce: { required: () => false },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          // Pre-answer "yes" so that a scripted client (or the demo) can submit the form as is.
          const withYes = form.replace('</form>', '<input type="hidden" name="logout" value="yes"></form>');
          ctx.body = page('Sign out of the test OP?', `${withYes}
<button type="submit" form="op.logoutForm">Yes, sign me out</button>
<script>document.getElementById('op.logoutForm').submit()</script>`);
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page('Signed out', '<p>You are signed out of the test OP.</p>');
        },
      },
    },
    async renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('OP error', `<pre>${esc(JSON.stringify(out, null, 2))}</pre>`);
    },
    ttl: {
      AccessToken: (ctx) => (ctx?.oidc?.params?.grant_type === 'refresh_token'
        ? refreshedTtl : accessTokenTtl),
      AuthorizationCode: 60,
      ClientCredentials: 600,
      IdToken: 3600,
      Interaction: 600,
      Grant: 3600,
      RefreshToken: 86400,
      Session: 3600,
    },
  });
}

async function main() {
  const { port, clients } = parseArgs();
  let callback = null;
  let provider = null;

  const server = http.createServer((req, res) => {
    if (!callback) {
      send(res, 503, page('Starting', '<p>Not ready.</p>'));
      return;
    }
    const { pathname } = new URL(req.url, 'http://127.0.0.1');
    if (pathname.startsWith('/interaction/')) {
      handleInteraction(provider, req, res, pathname).catch((err) => {
        console.error('interaction error:', err);
        if (!res.headersSent) send(res, 400, page('Error', `<p>${esc(err.message)}</p>`));
      });
      return;
    }
    callback(req, res);
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${server.address().port}`;
  provider = buildProvider(issuer, clients);
  provider.on('server_error', (ctx, err) => console.error('server_error:', err));
  const event = (...parts) => console.error(['EVENT', ...parts].join(' '));
  provider.on('grant.success', (ctx) => event('grant.success', ctx.oidc.params.grant_type));
  provider.on('grant.error', (ctx, err) => event('grant.error', ctx.oidc.params?.grant_type, err.error ?? err.message));
  provider.on('grant.revoked', () => event('grant.revoked'));
  provider.on('refresh_token.consumed', () => event('refresh_token.consumed'));
  provider.on('refresh_token.destroyed', () => event('refresh_token.destroyed'));
  provider.on('access_token.destroyed', () => event('access_token.destroyed'));
  provider.on('revocation.error', (ctx, err) => event('revocation.error', err.error ?? err.message));
  provider.on('backchannel.success', (ctx, client) => event('backchannel.success', client.clientId));
  provider.on('backchannel.error', (ctx, err, client) => event('backchannel.error', client.clientId, err.message));
  callback = provider.callback();

  process.stdout.write(`READY ${issuer}\n`);

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
