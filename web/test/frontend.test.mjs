// Browser tests of the frontend against the real service: upload, live
// dither completion, a requested Bayer dither, the history, deletion.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it as test } from 'node:test';
import { launch } from './browser.mjs';
import { repoRoot, startService } from './service.mjs';

const dbURL = process.env.TEST_DATABASE_URL;
const skip = dbURL ? false
  : 'TEST_DATABASE_URL is not set: skipping the browser tests (e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test)';
if (skip) console.log(skip);

const fixture = join(repoRoot, 'web/testdata/landscape.png');
// SCREENSHOT=1 refreshes the committed screenshot of the image page.
const screenshot = process.env.SCREENSHOT === '1'
  ? join(repoRoot, 'docs/screenshot-image-page.png') : null;
const WAIT = { timeout: 30000 };

// The steps build on each other: after a failure the rest are skipped.
let failed = false;
function it(name, fn) {
  test(name, async (t) => {
    if (failed) return t.skip('an earlier step failed');
    try {
      return await fn(t);
    } catch (err) {
      failed = true;
      throw err;
    }
  });
}

describe('frontend', { skip, timeout: 10 * 60 * 1000 }, () => {
  let service;
  let browser;
  let page;
  let imageId;
  const requests = [];

  before(async () => {
    service = await startService(dbURL);
    browser = await launch();
    page = await browser.context.newPage();
    page.on('request', (r) => requests.push({ method: r.method(), url: r.url() }));
    page.on('pageerror', (err) => console.error('page error:', err));
  });

  after(async () => {
    if (failed) console.error(`service log (last lines):\n${service?.logs.join('').split('\n').slice(-40).join('\n')}`);
    await browser?.close();
    await service?.stop();
  });

  it('serves the gallery and keeps one page load throughout', async () => {
    await page.goto(`${service.base}/`);
    await page.getByRole('heading', { name: 'Images' }).waitFor(WAIT);
    await page.evaluate(() => { window.sameLoad = true; });
  });

  it('uploads several files at once, with progress and errors beside each file', async () => {
    await page.getByLabel('Choose images…').setInputFiles([
      { name: 'landscape.png', mimeType: 'image/png', buffer: readFileSync(fixture) },
      { name: 'notes.png', mimeType: 'image/png', buffer: Buffer.from('this is not an image') },
    ]);
    const good = page.locator('.upload[data-filename="landscape.png"]');
    const bad = page.locator('.upload[data-filename="notes.png"]');
    await good.and(page.locator('[data-state="done"]')).waitFor(WAIT);
    await bad.and(page.locator('[data-state="error"]')).waitFor(WAIT);
    assert.match(await bad.locator('.errors').innerText(), /\S/);
    const tile = page.locator('#gallery .tile', { hasText: 'landscape.png' });
    await tile.waitFor(WAIT);
    imageId = await tile.getAttribute('data-id');
    const thumb = tile.locator('img');
    assert.match(await thumb.getAttribute('src'), /^\/thumbs\/[0-9a-f]{64}\?w=320$/);
    await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await thumb.elementHandle(), WAIT);
    assert.equal(requests.filter((r) => r.url.includes('/blobs/')).length, 0, 'the gallery downloaded an original');
  });

  it('shows the automatic dither COMPLETED on the image page', async () => {
    await page.locator(`#gallery .tile[data-id="${imageId}"] a`).click();
    await page.getByRole('heading', { level: 1, name: 'landscape.png' }).waitFor(WAIT);
    await page.locator('.dither[data-status="COMPLETED"]', { hasText: 'Floyd–Steinberg · 2 levels' }).waitFor(WAIT);
    await page.locator('#live-indicator[data-state="open"]').waitFor(WAIT);
    await page.locator('main[data-live="ready"]').waitFor({ state: 'attached', ...WAIT });
    const result = page.locator('.stage .over img');
    await page.waitForFunction((el) => el.complete && el.naturalWidth === 240, await result.elementHandle(), WAIT);
  });

  it('requests a Bayer 8x8 dither with 4 levels and sees it complete live, without polling', async () => {
    await page.getByLabel('Algorithm').selectOption('BAYER_8X8');
    await page.getByLabel('Levels', { exact: true }).fill('4');
    const before = requests.length;
    await page.getByRole('button', { name: 'Request dither' }).click();
    const row = page.locator('.dither', { hasText: 'Bayer 8×8 · 4 levels' });
    await row.waitFor(WAIT);
    await page.locator('.dither[data-status="COMPLETED"]', { hasText: 'Bayer 8×8 · 4 levels' }).waitFor(WAIT);
    const queries = requests.slice(before).filter((r) => r.url.endsWith('/query'));
    assert.equal(queries.length, 1, `only the mutation goes to /query, got ${queries.length} requests`);
    assert.equal(await row.getAttribute('data-selected'), 'true', 'the new result is the one compared');
    const href = await row.getByRole('link', { name: /Download/ }).getAttribute('href');
    assert.match(href, /^\/blobs\/[0-9a-f]{64}$/);
    const res = await page.request.get(`${service.base}${href}`);
    assert.equal(res.headers()['content-type'], 'image/png');
  });

  it('labels every form control', async () => {
    const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => el.type !== 'hidden' && !el.labels?.length && !el.getAttribute('aria-label'))
      .map((el) => el.outerHTML));
    assert.deepEqual(unlabelled, []);
  });

  it('shows the history as a timeline', async () => {
    await page.locator('#history > summary').click();
    assert.equal(await page.locator('#history').getAttribute('open'), '');
    const items = page.locator('#history .timeline > li');
    await items.nth(4).waitFor(WAIT);
    const types = await items.evaluateAll((els) => els.map((el) => el.dataset.type));
    assert.deepEqual(types, ['ImageUploaded', 'DitherRequested', 'DitherCompleted', 'DitherRequested', 'DitherCompleted']);
  });

  it('keeps a screenshot of the image page', async () => {
    if (!screenshot) return;
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.evaluate(() => document.activeElement?.blur());
    await page.screenshot({ path: screenshot, fullPage: true });
  });

  it('zooms to 1:1 pixels', async () => {
    await page.getByRole('button', { name: '1:1' }).click();
    const { width, dpr, rendering } = await page.evaluate(() => {
      const stage = document.querySelector('.stage');
      return {
        width: stage.getBoundingClientRect().width,
        dpr: window.devicePixelRatio,
        rendering: getComputedStyle(stage.querySelector('img')).imageRendering,
      };
    });
    assert.equal(Math.round(width * dpr), 240);
    assert.equal(rendering, 'pixelated');
  });

  it('fits a phone-sized screen', async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('deletes the image after confirmation', async () => {
    await page.getByRole('button', { name: 'Delete…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete this image?' });
    await dialog.waitFor(WAIT);
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    await page.getByRole('button', { name: 'Delete…' }).click();
    await dialog.getByRole('button', { name: 'Delete image' }).click();
    await page.getByRole('heading', { name: 'Images' }).waitFor(WAIT);
    await page.locator('#gallery').waitFor({ state: 'attached', ...WAIT });
    await page.locator('.empty:not([hidden])').waitFor(WAIT);
    assert.equal(await page.locator(`#gallery .tile[data-id="${imageId}"]`).count(), 0);
    assert.equal(await page.evaluate(() => window.sameLoad), true, 'the page was reloaded');
  });

  // Whether the files still answer depends on other images with the same
  // bytes (server/api_test.go tests it); the page offers none of them.
  it("shows a deleted image's history without offering its files", async () => {
    await page.evaluate((id) => { window.location.hash = `#/images/${id}`; }, imageId);
    await page.getByText('This image was deleted: its files are no longer offered.').waitFor(WAIT);
    await page.locator('summary', { hasText: 'History' }).waitFor(WAIT);
    assert.equal(await page.getByRole('link', { name: 'Download original' }).isVisible(), false);
    assert.equal(await page.getByRole('heading', { name: 'Compare' }).isVisible(), false);
    assert.equal(await page.locator('.dithers .actions').count(), 0, 'no result links');
    // Its subscriptions are refused (IMAGE_DELETED) once they surely ran,
    // and that is no error to show.
    await page.locator('main[data-live]').waitFor({ state: 'attached', ...WAIT });
    assert.equal(await page.locator('#toasts .toast.error').count(), 0, 'no error toast');
    assert.equal(await page.evaluate(() => window.sameLoad), true, 'the page was reloaded');
  });
});
