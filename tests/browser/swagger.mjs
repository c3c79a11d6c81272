// Drives slotsync's Swagger UI (/docs) in headless Chromium the way a person would:
// Authorize with a user's API token, expand POST /slots, Try it out, leave the request
// body exactly as Swagger UI prefills it, Execute, and check that the response shown is
// 201 and that the slot is then listed by GET /slots. Saves a screenshot on success and
// on failure.
//
//   node swagger.mjs [--base-url URL] [--token TOKEN] [--screenshot FILE]
//
// or through the environment: SWAGGER_BASE_URL (default http://127.0.0.1:8080),
// SWAGGER_API_TOKEN (required), SWAGGER_SCREENSHOT (default <repo>/target/swagger-check.png),
// CHROMIUM_PATH (default /usr/bin/chromium), SWAGGER_TIMEOUT_MS (per step, default 20000).
// Exits 0 when the check passes, 1 when it fails, 2 on a usage error.

import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));

const { values: opts } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    token: { type: 'string' },
    screenshot: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (opts.help) {
  console.log('usage: node swagger.mjs [--base-url URL] [--token API_TOKEN] [--screenshot FILE]');
  process.exit(0);
}

const baseUrl = (opts['base-url'] ?? process.env.SWAGGER_BASE_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
const token = opts.token ?? process.env.SWAGGER_API_TOKEN ?? '';
const screenshot = resolve(opts.screenshot ?? process.env.SWAGGER_SCREENSHOT ?? resolve(here, '../../target/swagger-check.png'));
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const stepTimeout = Number(process.env.SWAGGER_TIMEOUT_MS ?? 20000);

if (!token) {
  console.error('swagger.mjs: no API token: pass --token or set SWAGGER_API_TOKEN');
  process.exit(2);
}

const origin = new URL(baseUrl).origin;
const redact = (text) => String(text ?? '').split(token).join(`${token.slice(0, 6)}…`);
const log = (...parts) => console.log('[swagger]', ...parts.map(redact));

/** The request body schema and security of POST /slots, as the spec says (for the log, and to
 *  pick the security scheme to fill in the Authorize dialog). */
async function describeOperation() {
  const response = await fetch(`${baseUrl}/openapi.json`);
  if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
  const spec = await response.json();
  const op = spec.paths?.['/slots']?.post;
  if (!op) throw new Error('the spec has no POST /slots');
  const schemes = Object.keys((op.security ?? spec.security ?? [{}])[0] ?? {});
  const media = op.requestBody?.content ?? {};
  const json = media['application/json'] ?? Object.values(media)[0] ?? {};
  let schema = json.schema ?? {};
  const ref = schema.$ref?.replace('#/components/schemas/', '');
  if (ref) schema = spec.components?.schemas?.[ref] ?? schema;
  const shape = [
    ref ? `$ref ${ref}` : 'inline schema',
    schema.oneOf ? `oneOf[${schema.oneOf.length}]` : null,
    schema.anyOf ? `anyOf[${schema.anyOf.length}]` : null,
    schema.discriminator ? `discriminator ${JSON.stringify(schema.discriminator)}` : null,
    schema.example !== undefined ? 'schema example' : null,
    json.example !== undefined ? 'media example' : null,
    json.examples ? `media examples [${Object.keys(json.examples).join(', ')}]` : null,
  ].filter(Boolean).join(', ');
  return { openapi: spec.openapi, operationId: op.operationId, schemes, shape, mediaTypes: Object.keys(media) };
}

/** GET /slots (every page) as the user; answers the slot with `id`, or undefined. */
async function listedSlot(id) {
  let cursor;
  for (let page = 0; page < 20; page++) {
    const url = new URL(`${baseUrl}/slots`);
    url.searchParams.set('limit', '500');
    if (cursor) url.searchParams.set('cursor', cursor);
    const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`GET /slots answered ${response.status}: ${text}`);
    const body = JSON.parse(text);
    const found = (body.items ?? []).find((slot) => slot.id === id);
    if (found || !body.next_cursor) return found;
    cursor = body.next_cursor;
  }
  return undefined;
}

let browser;
let page;
const failures = [];
const external = [];
const consoleErrors = [];

async function check() {
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  log(`Chromium ${browser.version()} (${chromiumPath})`);
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  context.setDefaultTimeout(stepTimeout);
  page = await context.newPage();
  // The page must need nothing but the service: anything else is recorded and refused, so
  // that a CDN dependency shows here instead of hanging on a closed network.
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(origin) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    external.push(url);
    return route.abort('blockedbyclient');
  });
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => {
    if (!external.includes(request.url())) consoleErrors.push(`request failed: ${request.method()} ${request.url()}: ${request.failure()?.errorText}`);
  });

  let scheme = 'UserAuth';
  try {
    const operation = await describeOperation();
    scheme = operation.schemes[0] ?? scheme;
    log(`spec: OpenAPI ${operation.openapi}; POST /slots operationId=${operation.operationId ?? '(none)'}; security ${operation.schemes.join(', ') || '(none)'}; body ${operation.mediaTypes.join(', ')}: ${operation.shape}`);
  } catch (error) {
    log(`could not read ${baseUrl}/openapi.json (${error.cause?.message ?? error.message}); assuming the scheme ${scheme}`);
  }

  // 1. The page, and the operation's block (found by method and path, not by operationId or
  //    tag, which the spec may change).
  await page.goto(`${baseUrl}/docs`, { waitUntil: 'load' });
  const block = page
    .locator('.opblock.opblock-post')
    .filter({ has: page.locator('.opblock-summary-path[data-path="/slots"]') })
    .first();
  await block.waitFor({ state: 'visible' });
  log(`opened ${baseUrl}/docs: "${await page.title()}"`);

  // 2. Authorize: the dialog lists every security scheme; fill in the one POST /slots uses.
  await page.locator('.scheme-container button.authorize, .auth-wrapper button.authorize').first().click();
  const dialog = page.locator('.dialog-ux .modal-ux');
  await dialog.waitFor({ state: 'visible' });
  const container = dialog
    .locator('.auth-container')
    .filter({ has: page.locator('h4 code', { hasText: new RegExp(`^${scheme}$`) }) })
    .first();
  await container.locator('input').first().fill(token);
  await container.locator('button.authorize, button[type=submit]').first().click();
  await container.locator('button', { hasText: 'Logout' }).waitFor({ state: 'visible' });
  log(`authorized as ${scheme} (bearer)`);
  await dialog.locator('button.btn-done, .close-modal').first().click();
  await dialog.waitFor({ state: 'hidden' });

  // 3. Expand POST /slots and press "Try it out".
  await block.locator('.opblock-summary').first().click();
  const tryOut = block.locator('button.try-out__btn');
  await tryOut.waitFor({ state: 'visible' });
  await tryOut.click();
  const bodySection = block.locator('.opblock-section-request-body');
  // A request body with several named examples gets a drop-down; Swagger UI preselects the
  // first one, and so do we: nothing is chosen or typed here.
  const exampleSelect = bodySection.locator('.examples-select select');
  if (await exampleSelect.count()) {
    const chosen = await exampleSelect.first().evaluate((el) => el.options[el.selectedIndex]?.text);
    const all = await exampleSelect.first().evaluate((el) => [...el.options].map((o) => o.text));
    log(`request body examples offered: ${JSON.stringify(all)}; preselected: ${JSON.stringify(chosen)}`);
  }
  const contentType = bodySection.locator('.body-param-content-type select, .content-type-wrapper select');
  if (await contentType.count()) log(`request content type: ${await contentType.first().inputValue()}`);
  const textarea = bodySection.locator('textarea.body-param__text');
  await textarea.waitFor({ state: 'visible' });
  // The prefill is filled in by React after the switch to edit mode.
  const prefilled = await page
    .waitForFunction((el) => el.value.trim() !== '' && el.value, await textarea.elementHandle(), { timeout: 5000 })
    .then((handle) => handle.jsonValue())
    .catch(() => textarea.inputValue());
  log(`prefilled request body (left as it is):\n${prefilled}`);
  let prefilledJson;
  try {
    prefilledJson = JSON.parse(prefilled);
  } catch {
    log('the prefilled body is not JSON');
  }

  // 4. Execute, and wait for the request Swagger UI sends.
  const sent = page.waitForResponse(
    (response) => response.request().method() === 'POST' && new URL(response.url()).pathname === '/slots',
    { timeout: stepTimeout },
  );
  await block.locator('button.execute').click();
  let network;
  try {
    network = await sent;
  } catch {
    // Nothing answered: Swagger UI refused to send (a required body left empty shows a
    // validation error) or the request failed (Swagger UI then shows "Failed to fetch").
    const why = (await block.locator('.validation-errors, .errors-wrapper, .live-responses-table').allInnerTexts())
      .join(' ').replace(/\s+/g, ' ').trim();
    throw new Error(`no answer to POST /slots within ${stepTimeout} ms after Execute${why ? `; Swagger UI shows: ${why.slice(0, 500)}` : ''}`);
  }
  const requestBody = network.request().postData();
  const authorization = (await network.request().allHeaders())['authorization'];
  log(`Swagger UI sent POST ${network.url()} (Authorization: ${authorization ? authorization.replace(/^(Bearer \S{6}).*/, '$1…') : 'none'})`);
  if (requestBody !== prefilled) log(`note: the body sent differs from the prefill:\n${requestBody}`);

  // 5. What Swagger UI shows: the live response's status and body.
  const live = block.locator('.live-responses-table .response').first();
  await live.waitFor({ state: 'visible' });
  const statusText = (await live.locator('.response-col_status').innerText()).trim();
  const shownStatus = Number((statusText.match(/\d{3}/) ?? [])[0]);
  const shownBody = (await live.locator('.response-col_description pre').first().innerText().catch(() => '')).trim();
  log(`response shown: ${statusText.replace(/\s+/g, ' ')}\n${shownBody}`);
  await live.scrollIntoViewIfNeeded();

  if (shownStatus !== 201) {
    failures.push(`Swagger UI shows ${statusText.replace(/\s+/g, ' ') || 'no status'} for POST /slots with its prefilled body, not 201`);
    return;
  }

  // 6. The slot exists afterwards, as GET /slots lists it.
  let created;
  try {
    created = JSON.parse(shownBody);
  } catch {
    failures.push('the 201 response shown is not JSON');
    return;
  }
  const listed = await listedSlot(created.id);
  if (!listed) {
    failures.push(`GET /slots does not list the slot ${created.id} that Swagger UI created`);
  } else {
    if (prefilledJson?.title !== undefined && listed.title !== prefilledJson.title) {
      failures.push(`the listed slot's title ${JSON.stringify(listed.title)} is not the prefilled ${JSON.stringify(prefilledJson.title)}`);
    }
    log(`GET /slots lists slot ${listed.id}: ${JSON.stringify(listed.title)} ${listed.start ?? listed.start_date ?? ''} → ${listed.end ?? listed.end_date ?? ''}`);
  }
}

/** The part of the page worth a look: POST /slots from its summary down to the live response
 *  (the whole documented-responses table below it would make the picture some 10,000 px
 *  tall); the top of the page when the block never showed. */
async function screenshotArea() {
  const fallback = { x: 0, y: 0, width: 1400, height: 1000 };
  const box = async (locator) => ((await locator.count()) ? locator.first().boundingBox() : null);
  const scroll = await page.evaluate(() => ({ x: window.scrollX, y: window.scrollY }));
  const block = page.locator('.opblock.opblock-post').filter({ has: page.locator('.opblock-summary-path[data-path="/slots"]') });
  const top = await box(block).catch(() => null);
  if (!top) return fallback;
  const end = (await box(block.locator('.live-responses-table')).catch(() => null)) ??
    (await box(block.locator('.execute-wrapper, .opblock-section-request-body')).catch(() => null)) ?? top;
  const y = Math.max(0, top.y + scroll.y - 10);
  const bottom = Math.min(end.y + end.height, top.y + top.height) + scroll.y + 10;
  return { x: 0, y, width: 1400, height: Math.max(200, bottom - y) };
}

let code = 0;
try {
  await check();
} catch (error) {
  failures.push(error?.message ?? String(error));
} finally {
  if (page) {
    try {
      mkdirSync(dirname(screenshot), { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true, clip: await screenshotArea() });
      log(`screenshot: ${screenshot}`);
    } catch (error) {
      log(`could not save the screenshot ${screenshot}: ${error.message}`);
    }
  }
  await browser?.close().catch(() => {});
}
if (external.length) log(`the page asked for addresses outside ${origin} (refused): ${[...new Set(external)].join(' ')}`);
else log(`the page loaded nothing from outside ${origin}`);
if (consoleErrors.length) log(`browser console errors:\n  ${consoleErrors.join('\n  ')}`);
if (failures.length) {
  console.error(redact(`swagger check FAILED:\n  - ${failures.join("\n  - ")}`).replace(/\x1b\[[0-9;]*m/g, ""));
  code = 1;
} else {
  log('swagger check passed: Swagger UI created a slot with its prefilled body (201) and GET /slots lists it');
}
process.exit(code);
