#!/usr/bin/env node
// The gateway's /docs in headless Chromium (Debian's /usr/bin/chromium, driven by the pinned
// playwright-core; nothing is downloaded), as a front-end developer uses it: the page loads
// under its Content-Security-Policy with nothing fetched from another origin, every tag of the
// contract is rendered, the Authorize dialog takes a bearer token, and "Try it out" → "Execute"
// on GET /v1/auth/me shows a 200 answer. Run by tests/integration/test_docs.py, which logs in
// and passes (in the environment, so the token is not on a command line):
//   DOCS_BASE_URL    the gateway, e.g. http://127.0.0.1:8080
//   DOCS_TOKEN       an access token
//   DOCS_TAGS        JSON array of the tag names that must render
//   DOCS_OPERATION   JSON {"tag", "operation_id", "expect"}: the operation to run; `expect` is a
//                    string the response body must contain
//   DOCS_SCREENSHOT  where to save the PNG of the whole page (and <name>-me.png: the operation run)
//   DOCS_CHROMIUM    the browser (default /usr/bin/chromium)
// Prints one JSON line: {"ok", "tags", "status", "external_requests", "csp_violations", ...};
// exits 0 only when every check passed.
'use strict';

const path = require('path');
const { chromium } = require(path.join(__dirname, '..', '..', 'node_modules', 'playwright-core'));

const STEP_MS = 15000;

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`docs.js: ${name} is required`);
    process.exit(2);
  }
  return v;
}

async function main() {
  const base = env('DOCS_BASE_URL').replace(/\/+$/, '');
  const token = env('DOCS_TOKEN');
  const tags = JSON.parse(env('DOCS_TAGS'));
  const op = JSON.parse(env('DOCS_OPERATION'));
  const shot = env('DOCS_SCREENSHOT');
  const origin = new URL(base).origin;
  const report = { ok: false, tags: {}, external_requests: [], csp_violations: [], page_errors: [], ms: {} };
  const t0 = Date.now();
  const mark = (what) => { report.ms[what] = Date.now() - t0; };

  const browser = await chromium.launch({
    executablePath: process.env.DOCS_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // root in CI: Chromium's own sandbox needs user namespaces; no GPU on these machines
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    timeout: 30000,
  });
  mark('launched');
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('request', (req) => {
      const u = req.url();
      if (!u.startsWith('data:') && !u.startsWith('blob:') && new URL(u).origin !== origin) {
        report.external_requests.push(u);
      }
    });
    page.on('console', (msg) => {
      if (/Content[- ]Security[- ]Policy/i.test(msg.text())) report.csp_violations.push(msg.text());
    });
    page.on('pageerror', (err) => report.page_errors.push(String(err)));

    // /docs redirects to /docs/ (relative Location), which loads Swagger UI and /openapi.yaml.
    const resp = await page.goto(`${base}/docs`, { waitUntil: 'load' });
    report.page_status = resp.status();
    report.page_csp = (await resp.allHeaders())['content-security-policy'] || null;
    await page.locator('.swagger-ui .info .title').first().waitFor();
    report.title = (await page.locator('.swagger-ui .info .title').first().innerText()).trim();
    mark('rendered');

    for (const tag of tags) {
      const el = page.locator(`.opblock-tag-section h3.opblock-tag[data-tag="${tag}"]`);
      report.tags[tag] = (await el.count()) === 1 && (await el.isVisible());
    }

    // Authorize: the bearerAuth scheme's field in the dialog, then close it.
    await page.locator('.auth-wrapper button.authorize').click();
    const dialog = page.locator('.dialog-ux .modal-ux');
    await dialog.waitFor();
    const scheme = dialog.locator('.auth-container').filter({ hasText: 'bearerAuth' });
    await scheme.locator('input#auth-bearer-value').fill(token);
    await scheme.locator('button.authorize').click();
    // applied: the scheme now offers Logout instead of the field
    await scheme.locator('button', { hasText: 'Logout' }).waitFor();
    await scheme.locator('button.btn-done').click();
    await dialog.waitFor({ state: 'detached' });
    mark('authorized');

    // GET /v1/auth/me: expand, Try it out, Execute, read the live response.
    const block = page.locator(`#operations-${op.tag}-${op.operation_id}`);
    await block.locator('.opblock-summary').first().click();
    await block.locator('button.try-out__btn').click();
    await block.locator('button.execute').click();
    const live = block.locator('.live-responses-table .response');
    await live.first().waitFor();
    report.status = (await live.first().locator('.response-col_status').innerText()).trim();
    const body = await block.locator('.live-responses-table .response-col_description pre').first().innerText();
    report.body_has_expected = body.includes(op.expect);
    mark('executed');
    // the whole page (every tag), and the operation with its answer in view
    await page.screenshot({ path: shot, fullPage: true });
    report.screenshot = shot;
    await live.first().scrollIntoViewIfNeeded();
    const opShot = shot.replace(/\.png$/, '') + '-me.png';
    await page.screenshot({ path: opShot });
    report.screenshot_operation = opShot;
    mark('screenshot');

    report.ok = report.page_status === 200 &&
      Object.keys(report.tags).length === tags.length && Object.values(report.tags).every(Boolean) &&
      report.status === '200' && report.body_has_expected &&
      report.external_requests.length === 0 && report.csp_violations.length === 0 &&
      report.page_errors.length === 0;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(report));
  process.exit(report.ok ? 0 : 1);
}

main().catch((err) => {
  console.error(`docs.js: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
