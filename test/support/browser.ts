/**
 * A real Chromium for tests of the console (test/ui.test.ts): Debian's `chromium`, driven by
 * playwright-core (which brings no browser of its own). Each page records what would be a
 * bug on a healthy page: console errors, uncaught exceptions, failed requests, error answers
 * and requests to any origin but the server's. Screenshots go to test-artifacts/ui/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'ui');

/** Debian's chromium (CHROMIUM_PATH overrides), or null when there is none. */
export function chromiumPath(): string | null {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => Boolean(p));
  return candidates.find((p) => existsSync(p)) ?? null;
}

/** A headless Chromium, closed after the test (or file). */
export async function launchBrowser(t: TestContext | null, executablePath: string): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // Chromium refuses to sandbox as root (CI runs as root); the pages are our own.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  t?.after(() => browser.close());
  return browser;
}

/** A page and what went wrong on it so far. */
export interface WatchedPage {
  page: Page;
  /** Console errors, uncaught exceptions, failed requests, answers >= 400, foreign requests. */
  problems: string[];
  /** Every URL the page asked for (HTTP and websockets). */
  requests: string[];
}

/** A fresh page (its own context: its own sessionStorage) that records its problems. */
export async function watchedPage(browser: Browser, origin: string): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  const requests: string[] = [];
  const own = (url: string) => url.startsWith(origin + '/') || url.startsWith(origin.replace(/^http/, 'ws') + '/');
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  page.on('pageerror', (err) => problems.push(`exception: ${err.message}`));
  page.on('request', (r) => {
    requests.push(r.url());
    if (!own(r.url())) problems.push(`foreign request: ${r.url()}`);
  });
  page.on('websocket', (ws) => {
    requests.push(ws.url());
    if (!own(ws.url())) problems.push(`foreign websocket: ${ws.url()}`);
  });
  page.on('requestfailed', (r) => problems.push(`failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`answer ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  return { page, problems, requests };
}

/** Saves a screenshot of the page as test-artifacts/ui/<name>.png; answers its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
