// A SAML login in headless Chromium (Debian's /usr/bin/chromium, through playwright-core) whose
// ACS POST is cross-site, as tests/saml_browser.rs sets it up: the proxy at
// https://127.0.0.1:<port> (test certificate, ignored here), SimpleSAMLphp at
// http://localhost:<port> — another site. Open $SSO_BASE/app → the IdP's login form → alice →
// the IdP's auto-submitting form POSTs SAMLResponse to /callback_<id> (Sec-Fetch-Site:
// cross-site) → the proxy's session → /app at the upstream.
//
// SSO_MODE=normal: the browser keeps the proxy's cookies as set.
// SSO_MODE=lax: the control. Before alice signs in, every proxy cookie set `SameSite=None` is
// stored again as `SameSite=Lax` (what the browser would hold had the proxy sent Lax), so the
// cross-site ACS POST goes without the pending cookie.
//
// Prints one line `RESULT <json>`: what the browser saw (final URL, the ACS request's
// Sec-Fetch-Site and cookie names, its status, the proxy's cookies as the browser stored them
// (names and attributes only), the upstream's X-Forwarded-User; in the control the error page's
// text).
//
// Environment: SSO_BASE (proxy URL), SSO_MODE (normal | lax), SSO_USER, SSO_PASSWORD,
// CHROMIUM (default /usr/bin/chromium).

import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('SSO_BASE');
const MODE = env('SSO_MODE');
const USER = env('SSO_USER');
const PASSWORD = env('SSO_PASSWORD');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
if (MODE !== 'normal' && MODE !== 'lax') throw new Error(`SSO_MODE=${MODE}: normal or lax`);

const proxyOrigin = new URL(BASE).origin;
const isAcs = (url) => {
  const u = new URL(url);
  return u.origin === proxyOrigin && u.pathname.startsWith('/callback_');
};

// The proxy's cookies as the browser holds them (values left out: they are sealed secrets).
async function proxyCookies(context) {
  return (await context.cookies(BASE)).map(({ name, sameSite, secure, httpOnly }) => ({
    name, sameSite, secure, httpOnly,
  }));
}

// Store every SameSite=None proxy cookie again as SameSite=Lax (same name, domain, path, value).
async function downgradeToLax(context) {
  const none = (await context.cookies(BASE)).filter((c) => c.sameSite === 'None');
  await context.addCookies(none.map((c) => ({ ...c, sameSite: 'Lax' })));
  return none.map((c) => c.name);
}

// The echo upstream answers with the request it saw as JSON: its X-Forwarded-User, if any.
function upstreamUser(text) {
  try {
    const seen = JSON.parse(text);
    const header = seen.headers.find(([name]) => name.toLowerCase() === 'x-forwarded-user');
    return header ? header[1] : null;
  } catch {
    return null;
  }
}

async function main() {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  const result = { mode: MODE };
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    let acs = null;
    page.on('request', async (request) => {
      if (request.method() !== 'POST' || !isAcs(request.url())) return;
      acs = request;
    });

    await page.goto(`${BASE}/app`);
    await page.waitForSelector('input[name="username"]', { timeout: 20000 });
    result.loginPageOrigin = new URL(page.url()).origin;
    result.pendingCookies = await proxyCookies(context);
    if (MODE === 'lax') result.downgraded = await downgradeToLax(context);
    result.storedBeforeAcs = await proxyCookies(context);

    await page.fill('input[name="username"]', USER);
    await page.fill('input[name="password"]', PASSWORD);
    const acsResponse = page.waitForResponse(
      (r) => r.request().method() === 'POST' && isAcs(r.url()),
      { timeout: 20000 },
    );
    await page.press('input[name="password"]', 'Enter');
    const response = await acsResponse;
    result.acsStatus = response.status();
    // A refused login stays on the ACS's error page; an accepted one goes on to the target.
    const done = result.acsStatus === 303
      ? (u) => u.origin === proxyOrigin && !isAcs(u.href)
      : (u) => isAcs(u.href);
    await page.waitForURL(done, { timeout: 20000 });
    await page.waitForLoadState('load');

    const headers = await acs.allHeaders();
    result.acsUrl = acs.url();
    result.acsSecFetchSite = headers['sec-fetch-site'] ?? null;
    result.acsOrigin = headers.origin ?? null;
    result.acsCookieNames = (headers.cookie ?? '')
      .split(';')
      .map((kv) => kv.trim().split('=')[0])
      .filter((n) => n !== '');
    result.finalUrl = page.url();
    result.upstreamUser = upstreamUser((await page.textContent('body')) ?? '');
    result.refusal = result.acsStatus === 303 ? null : ((await page.textContent('body')) ?? '').slice(0, 400);
    result.sessionCookies = await proxyCookies(context);
  } finally {
    await browser.close();
  }
  console.log(`RESULT ${JSON.stringify(result)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
