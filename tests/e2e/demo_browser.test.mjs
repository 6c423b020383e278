// Browser test of the live demo page (GET /demo, clients/demo/) against a real presd: two
// Chromium pages, alice and bob, in one context. Skipped when /usr/bin/chromium is missing or the
// server does not serve /demo.
//
// Screenshots of bob's page go to $PRESD_TEST_OUTPUT/demo (default: tests/e2e/output/demo, gitignored).
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { e2e, startPresd, stopAll, makeContext, sleep } from './harness.mjs';

const CHROMIUM = process.env.PRESD_CHROMIUM || '/usr/bin/chromium';
const TTL_S = 3;
const here = path.dirname(fileURLToPath(import.meta.url));
const OUT_DIR = path.join(process.env.PRESD_TEST_OUTPUT || path.join(here, 'output'), 'demo');

let skipReason = null;
let S;            // presd
let browser;
let ctx;          // context id: owned by bob, alice a member
const page = {};  // alice, bob
const pageErrors = [];

before(async () => {
  // scripts/install-deps installs chromium unless SKIP_BROWSER=1; only then may this test skip.
  if (!fs.existsSync(CHROMIUM)) {
    if (process.env.SKIP_BROWSER !== '1') assert.fail(`${CHROMIUM} is missing: run scripts/install-deps (or set SKIP_BROWSER=1)`);
    skipReason = `${CHROMIUM} is missing and SKIP_BROWSER=1`;
    return;
  }
  const { chromium } = await import('playwright-core');

  S = await startPresd({
    name: 'demo',
    tenants: ['alice.test', 'bob.test'],
    // The page keeps its status alive by re-sending it at about half the TTL; let those
    // refreshes through.
    args: ['--pres-ttl', String(TTL_S), '--expiry-tick-ms', '20', '--same-state-interval-ms', '1000'],
  });
  const probe = await S.http('GET', '/demo');
  assert.equal(probe.status, 200, `GET /demo: ${probe.status} ${probe.text.slice(0, 200)}`);

  ctx = makeContext(S, 'bob.test', { 'alice.test': 'member' });
  const tokens = { alice: S.accessToken('alice.test'), bob: S.accessToken('bob.test') };

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  for (const who of ['alice', 'bob']) {
    const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
    const p = await context.newPage();
    p.on('pageerror', (e) => pageErrors.push(`${who}: ${e.message}`));
    p.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`${who} console: ${m.text()}`); });
    const q = new URLSearchParams({ token: tokens[who], context: ctx });
    const res = await p.goto(`${S.url}/demo?${q}`);
    assert.equal(res.status(), 200);
    page[who] = p;
  }
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopAll();
});

function skipped(t) {
  if (!skipReason) return false;
  t.skip(skipReason);
  return true;
}

const member = (tag) => `[data-member="${tag}"]`;

async function shot(t, name) {
  fs.mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `${name}.png`);
  await page.bob.screenshot({ path: file, fullPage: true });
  t.diagnostic(`screenshot: ${file}`);
  return file;
}

// Text of the #typing line of a page.
const typingText = (p) => p.locator('#typing').textContent();

// Waits until fn(page) is true, polling; fails with `what` and the last value seen.
async function until(p, fn, arg, timeout, what) {
  try {
    await p.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    const html = await p.locator('#members').innerHTML().catch(() => '?');
    throw new Error(`${what} within ${timeout} ms; typing line "${await typingText(p).catch(() => '?')}"; members: ${html}` +
      (pageErrors.length ? `\npage errors:\n${pageErrors.join('\n')}` : ''));
  }
}

const statusIs = ([sel, status]) => document.querySelector(sel)?.getAttribute('data-status') === status;

e2e('both pages connect, load the member list and show each other online', async (t) => {
  if (skipped(t)) return;
  for (const who of ['alice', 'bob']) {
    await until(page[who], () => document.querySelector('#state')?.dataset.state === 'open', null, 5000, `${who}'s page connected`);
    await until(page[who], statusIs, [member(`${who}.test`), 'online'], 3000, `${who} sees themself online`);
  }
  // Alice online in bob's list (and bob in alice's); both come from the member list too.
  await until(page.bob, statusIs, [member('alice.test'), 'online'], 3000, 'bob sees alice online');
  await until(page.alice, statusIs, [member('bob.test'), 'online'], 3000, 'alice sees bob online');
  assert.equal(await page.bob.locator('#members [data-member]').count(), 2);
  assert.equal(await page.bob.locator(`${member('alice.test')} .role`).textContent(), 'member');
  assert.equal(await page.bob.locator(`${member('bob.test')} .role`).textContent(), 'admin');
  assert.equal(await typingText(page.bob), '');
  await shot(t, '01-connected');
});

e2e('typing in alice\'s page shows "alice.test is typing…" on bob\'s page, then it expires', async (t) => {
  if (skipped(t)) return;
  await page.alice.locator('#message').pressSequentially('hello bob', { delay: 40 });
  await until(page.bob, () => document.querySelector('#typing')?.textContent.includes('alice.test is typing'),
    null, 3000, 'bob sees "alice.test is typing"');
  // Alice's own page does not show her own typing.
  assert.equal(await typingText(page.alice), '');
  // Status refreshes keep alice online in bob's list past one TTL.
  assert.equal(await page.bob.locator(member('alice.test')).getAttribute('data-status'), 'online');
  await shot(t, '02-alice-typing');

  // Alice stops typing: the state expires after the TTL and the line empties.
  await until(page.bob, () => document.querySelector('#typing')?.textContent === '', null, 8000,
    'the typing line on bob\'s page empties after alice stops');
  await until(page.bob, statusIs, [member('alice.test'), 'online'], 3000, 'alice still online after her typing expired');
  await shot(t, '03-typing-expired');
});

e2e('alice clicks Away: bob\'s dot for alice turns away; Online brings it back', async (t) => {
  if (skipped(t)) return;
  await page.alice.locator('#away').click();
  await until(page.bob, statusIs, [member('alice.test'), 'away'], 3000, 'bob sees alice away');
  assert.equal(await page.bob.locator(`${member('alice.test')} .dot`).getAttribute('data-status'), 'away');
  assert.equal(await page.alice.locator('#away').getAttribute('aria-pressed'), 'true');
  // Still away after more than one TTL: the page keeps the chosen status alive.
  await sleep((TTL_S + 1) * 1000);
  assert.equal(await page.bob.locator(member('alice.test')).getAttribute('data-status'), 'away');
  await shot(t, '04-alice-away');

  await page.alice.locator('#online').click();
  await until(page.bob, statusIs, [member('alice.test'), 'online'], 3000, 'bob sees alice online again');
});

e2e('alice clicks Offline: bob\'s dot for alice turns grey', async (t) => {
  if (skipped(t)) return;
  await page.alice.locator('#offline').click();
  await until(page.bob, ([sel]) => ['offline', 'unknown'].includes(document.querySelector(sel)?.getAttribute('data-status')),
    [member('alice.test')], 3000, 'bob sees alice offline');
  await shot(t, '05-alice-offline');
  assert.deepEqual(pageErrors, []);
});
