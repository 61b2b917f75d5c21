// Drives headless Chromium (Debian's /usr/bin/chromium, through playwright-core) through the
// sso-proxy admin pages, as tests/admin_browser.rs sets them up:
//   sign in as alice (an admin) at the real OP → + New Connection → OIDC / Custom → Next →
//   fill the form → Test Provider (popup, real login, mapped claims) → Save → the login page
//   lists it → toggle it off → gone from the login page → Delete.
// Screenshots go to $SSO_SCREENSHOTS; each path is printed as `SCREENSHOT <path>`.
//
// Then a SAML connection through the modal, with its IdP metadata file uploaded (metadata
// without a signing certificate is refused first, the problem shown at the field).
//
// Environment: SSO_BASE (proxy URL), SSO_OP_ISSUER, SSO_CLIENT_ID, SSO_CLIENT_SECRET,
// SSO_SAML_METADATA and SSO_SAML_METADATA_NO_CERT (files), SSO_SCREENSHOTS,
// CHROMIUM (default /usr/bin/chromium).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('SSO_BASE');
const ISSUER = env('SSO_OP_ISSUER');
const CLIENT_ID = env('SSO_CLIENT_ID');
const CLIENT_SECRET = env('SSO_CLIENT_SECRET');
const SHOTS = env('SSO_SCREENSHOTS');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const SAML_METADATA = env('SSO_SAML_METADATA');
const SAML_METADATA_NO_CERT = env('SSO_SAML_METADATA_NO_CERT');
const ID = 'second';
const NAME = 'Second OP';

fs.mkdirSync(SHOTS, { recursive: true });
let shotNo = 0;
async function shot(page, name, options = {}) {
  shotNo += 1;
  const file = path.join(SHOTS, `${String(shotNo).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, ...options });
  console.log(`SCREENSHOT ${file}`);
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

// Click something whose handler reloads the page, and wait for the reloaded page.
async function clickAndReload(page, selector) {
  await page.evaluate(() => { window.__beforeReload = true; });
  await page.click(selector);
  await page.waitForFunction(() => !window.__beforeReload, null, { timeout: 15000 });
  await page.waitForLoadState('load');
}

// Sign in at the OP if it asks (it may remember alice and go straight on).
async function signInAtOpIfAsked(page, until) {
  await page.waitForSelector(`input[name="login"], ${until}`, { timeout: 20000 });
  if (await page.$('input[name="login"]')) {
    await page.fill('input[name="login"]', 'alice');
    await page.fill('input[name="password"]', 'alice-pw');
    await page.click('button[type="submit"]');
    await page.waitForSelector(until, { timeout: 20000 });
  }
}

async function loginChooserText(context) {
  const page = await context.newPage();
  try {
    await page.goto(`${BASE}/_sso/login`);
    return await page.textContent('main');
  } finally {
    await page.close();
  }
}

async function main() {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sso-admin-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    // HTTP error statuses (the OP's missing favicon, an expected 400) are not script errors.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      errors.push(`${m.text()} (${m.location().url})`);
    }
  });
  page.on('dialog', (d) => d.accept());
  try {
    // 1. The admin page sends us to the login chooser; sign in as alice at the real OP.
    await page.goto(`${BASE}/_sso/admin/connections`);
    await page.waitForSelector('a.btn');
    await shot(page, 'login-chooser');
    await page.click('a.btn:has-text("Local OP")');
    await signInAtOpIfAsked(page, 'h1:has-text("Identity Providers")');
    check(page.url() === `${BASE}/_sso/admin/connections`, 'back on the admin page after the login');
    check(await page.$('tr[data-id="local"]') !== null, 'the configured connection is listed');
    await page.hover('tr[data-id="local"]');
    await shot(page, 'connections');

    // 2. + New Connection → OIDC → Custom → Next.
    await page.click('#new-connection');
    await page.waitForSelector('#connection-dialog[open] #step-choose:not([hidden])');
    check(await page.isChecked('input[name="protocol"][value="oidc"]'), 'OIDC is preselected');
    const presets = await page.$$eval('#preset-choices label', (ls) => ls.map((l) => l.textContent.trim()));
    check(presets.includes('Keycloak') && presets.includes('Okta') && presets.includes('Custom'), `OIDC presets: ${presets.join(', ')}`);
    await page.check('#preset-choices input[value="custom"]');
    await shot(page, 'new-connection-modal');
    await page.click('#next-step');
    await page.waitForSelector('#step-configure:not([hidden]) .fields[data-protocol="oidc"]:not([hidden])');
    check(await page.inputValue('#oidc-scopes') === 'openid, profile, email', 'preset defaults are filled in');
    check(await page.isChecked('#oidc-verify_token_signature'), 'verify token signature defaults to on');

    // 3. The configuration form.
    await page.fill('#oidc-id', ID);
    await page.fill('#oidc-display_name', NAME);
    await page.fill('#oidc-client_id', CLIENT_ID);
    await page.fill('#oidc-client_secret', CLIENT_SECRET);
    await page.fill('#oidc-issuer', ISSUER);
    await page.check('#oidc-groups-enabled');
    await page.fill('#oidc-groups-admins', 'admins');
    check(await page.inputValue('#oidc-callback_url') === `${BASE}/callback_${ID}`, 'the callback URL follows the id');
    check(await page.inputValue('#oidc-webapp_url') === BASE, 'the WebApp URL is shown');
    await page.click('.copy-derived[data-target="oidc-callback_url"]');
    await page.waitForSelector('.copy-derived.copied');
    await shot(page, 'configuration-form');

    // 4. Test Provider: a popup runs a real login and shows the mapped claims.
    const [popup] = await Promise.all([context.waitForEvent('page'), page.click('#test-provider')]);
    await popup.waitForLoadState();
    await signInAtOpIfAsked(popup, '#test-status');
    const status = await popup.textContent('#test-status');
    check(status.includes('Success'), `the test succeeded: ${status}`);
    check((await popup.textContent('#mapped-user')) === 'alice', 'mapped user id');
    check((await popup.textContent('#mapped-email')) === 'alice@example.com', 'mapped email');
    check((await popup.textContent('#mapped-groups')).includes('admins'), 'mapped groups');
    check((await popup.textContent('#mapped-admin')) === 'yes', 'mapped admin');
    check((await popup.textContent('#raw-claims')).includes('"email_verified": true'), 'raw claims shown');
    await popup.setViewportSize({ width: 900, height: 1100 });
    await shot(popup, 'test-provider-result', { fullPage: true });
    await page.waitForSelector('#test-result.ok');
    check((await page.textContent('#test-result')).includes('alice@example.com'), 'the modal shows the result too');
    await shot(page, 'test-result-in-modal');
    await popup.close();
    const cookies = await context.cookies(BASE);
    check(cookies.filter((c) => c.name === 'sso_session').length === 1, 'the test created no second session');

    // 5. Save: listed, and on the login page.
    await clickAndReload(page, '#save-connection');
    await page.waitForSelector(`tr[data-id="${ID}"]`);
    check((await page.textContent(`tr[data-id="${ID}"] td.name`)).includes(NAME), 'the new connection is listed');
    check(await page.isChecked(`tr[data-id="${ID}"] .active-toggle`), 'and active');
    await page.hover(`tr[data-id="${ID}"]`);
    await shot(page, 'saved-with-row-actions');
    await page.click(`tr[data-id="${ID}"] .copy-id`);
    await page.waitForSelector(`tr[data-id="${ID}"] .copy-id.copied`);
    check((await loginChooserText(context)).includes(NAME), 'the login page lists the new connection');
    const chooser = await context.newPage();
    await chooser.goto(`${BASE}/_sso/login`);
    await shot(chooser, 'login-page-with-new-connection');
    await chooser.close();

    // 6. Edit shows the stored settings without the secret.
    await page.click(`tr[data-id="${ID}"] .edit`);
    await page.waitForSelector('#connection-dialog[open] #step-configure:not([hidden])');
    check(await page.inputValue('#oidc-client_secret') === '', 'the secret is never shown');
    check((await page.getAttribute('#oidc-client_secret', 'placeholder')).includes('set'), 'but it says it is set');
    check(await page.inputValue('#oidc-issuer') === ISSUER, 'the stored settings are shown');
    await shot(page, 'edit-connection');
    await page.click('#connection-dialog .modal-head .close-dialog');

    // 7. Toggle it off: gone from the login page.
    await clickAndReload(page, `tr[data-id="${ID}"] .slider`);
    check(!(await page.isChecked(`tr[data-id="${ID}"] .active-toggle`)), 'the connection is inactive');
    await shot(page, 'deactivated');
    check(!(await loginChooserText(context)).includes(NAME), 'the login page no longer lists it');

    // 8. Delete it.
    await page.hover(`tr[data-id="${ID}"]`);
    await clickAndReload(page, `tr[data-id="${ID}"] .delete`);
    check(await page.$(`tr[data-id="${ID}"]`) === null, 'the connection is deleted');
    await shot(page, 'deleted');

    // 9. SAML → Duo through the modal; the metadata file is uploaded.
    await page.click('#new-connection');
    await page.check('input[name="protocol"][value="saml"]');
    const samlPresets = await page.$$eval('#preset-choices label', (ls) => ls.map((l) => l.textContent.trim()));
    check(samlPresets.join(', ') === 'Duo, Google, Jumpcloud, Microsoft AD, Custom', `SAML presets: ${samlPresets.join(', ')}`);
    await page.check('#preset-choices input[value="duo"]');
    await page.click('#next-step');
    await page.waitForSelector('#step-configure:not([hidden]) .fields[data-protocol="saml"]:not([hidden])');
    check(await page.inputValue('#saml-claims-email') === 'Email', 'Duo attribute names are filled in');
    check(await page.isChecked('#saml-require_signed_assertions'), 'signed assertions are required by default');
    await page.fill('#saml-id', 'corp-saml');
    await page.fill('#saml-display_name', 'Corp SAML');
    check(await page.inputValue('#saml-acs_url') === `${BASE}/callback_corp-saml`, 'the Reply/ACS URL follows the id');
    await page.setInputFiles('.fields[data-protocol="saml"] .metadata-file', SAML_METADATA_NO_CERT);
    await page.waitForFunction(() => document.getElementById('saml-idp_metadata').value.includes('EntityDescriptor'));
    await page.click('#save-connection');
    await page.waitForSelector('.problem[data-problem="idp_metadata"]:not(:empty)');
    const problem = await page.textContent('.fields[data-protocol="saml"] .problem[data-problem="idp_metadata"]');
    check(problem.includes('signing certificate'), `metadata without a signing certificate is refused: ${problem}`);
    await shot(page, 'saml-metadata-refused');
    await page.setInputFiles('.fields[data-protocol="saml"] .metadata-file', SAML_METADATA);
    await page.waitForFunction(() => document.getElementById('saml-idp_metadata').value.includes('X509Certificate'));
    await clickAndReload(page, '#save-connection');
    await page.waitForSelector('tr[data-id="corp-saml"]');
    check((await page.textContent('tr[data-id="corp-saml"]')).includes('SAML'), 'the SAML connection is listed');
    check((await loginChooserText(context)).includes('Corp SAML'), 'the login page lists the SAML connection');
    await page.hover('tr[data-id="corp-saml"]');
    await shot(page, 'saml-saved');
    await clickAndReload(page, 'tr[data-id="corp-saml"] .delete');
    check(await page.$('tr[data-id="corp-saml"]') === null, 'the SAML connection is deleted');

    // 10. The other pages render.
    for (const name of ['users', 'groups', 'invites', 'audit']) {
      await page.goto(`${BASE}/_sso/admin/${name}`);
      await page.waitForSelector(`table#${name}`);
      await shot(page, name);
    }
    check((await page.textContent('table#audit')).includes('connection.delete'), 'the audit log lists the changes');
    check(errors.length === 0, `no script errors (${errors.join(' | ')})`);
  } catch (e) {
    for (const [i, p] of context.pages().entries()) {
      try {
        const file = path.join(SHOTS, `failure-${i}.png`);
        await p.screenshot({ path: file, fullPage: true });
        console.log(`SCREENSHOT ${file}`);
        console.log(`--- page ${i}: ${p.url()}\n${(await p.content()).slice(0, 4000)}`);
      } catch (inner) {
        console.log(`(no screenshot of page ${i}: ${inner.message})`);
      }
    }
    if (errors.length) console.log(`script errors: ${errors.join(' | ')}`);
    throw e;
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().then(
  () => { console.log('ADMIN BROWSER TEST PASSED'); },
  (e) => { console.error(e.stack || String(e)); process.exit(1); },
);
