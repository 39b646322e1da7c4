/**
 * A browser page standing in for VS Code's webview: the panel's own HTML and
 * CSP from playgroundHtml(), the built dist/webview.js and media CSS served
 * from a made-up origin, a stub acquireVsCodeApi, and a theme's variables.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { newNonce, playgroundHtml } from '../../src/extension/playground-html';
import { DARK_MODERN } from './theme';

export const CHROMIUM = process.env.BITMAP_LAB_CHROMIUM || '/usr/bin/chromium';
const PROJECT = resolve(__dirname, '../../..');
const ORIGIN = 'https://bitmap-lab.test';
const SERVED: Record<string, string> = { '/dist/webview.js': 'text/javascript', '/dist/playground.css': 'text/css' };

export function launch(): Promise<Browser> {
  if (!existsSync(resolve(PROJECT, 'dist/webview.js'))) throw new Error('dist/webview.js is missing; run `npm run build` first');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** What the stub VS Code API saw, read back from the page. */
interface Host {
  posted: unknown[];
  state: unknown;
  violations: string[];
}

export interface PanelPage {
  page: Page;
  host(): Promise<Host>;
  /** Posts as the extension host would, and resolves once the webview has handled it. */
  post(message: unknown): Promise<void>;
  /** Page errors, and console errors and warnings, in order. */
  console: string[];
}

export async function openPanel(browser: Browser, options: { state?: unknown } = {}): Promise<PanelPage> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const logged: string[] = [];
  page.on('pageerror', (error) => logged.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') logged.push(`${message.type()}: ${message.text()}`);
  });
  await page.route(`${ORIGIN}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/') {
      const html = playgroundHtml({
        cspSource: ORIGIN,
        nonce: newNonce(),
        scriptUri: `${ORIGIN}/dist/webview.js`,
        styleUri: `${ORIGIN}/dist/playground.css`,
      });
      return route.fulfill({ contentType: 'text/html', body: html });
    }
    if (Object.hasOwn(SERVED, path)) {
      return route.fulfill({ contentType: SERVED[path], body: readFileSync(resolve(PROJECT, path.slice(1))) });
    }
    return route.fulfill({ status: 404 });
  });
  // Runs before the page's own script, as VS Code's preload does; not subject to the CSP.
  await page.addInitScript((saved) => {
    const host = { posted: [] as unknown[], state: saved, violations: [] as string[] };
    Object.assign(window, {
      testHost: host,
      acquireVsCodeApi: () => ({
        postMessage: (message: unknown) => host.posted.push(structuredClone(message)),
        getState: () => host.state,
        setState: (state: unknown) => (host.state = structuredClone(state)),
      }),
    });
    document.addEventListener('securitypolicyviolation', (event) => {
      host.violations.push(`${event.violatedDirective} ${event.blockedURI}`);
    });
  }, options.state);
  await page.goto(`${ORIGIN}/`);
  await page.evaluate((theme) => {
    for (const [name, value] of Object.entries(theme)) document.documentElement.style.setProperty(name, value);
    document.body.classList.add('vscode-dark');
  }, DARK_MODERN);
  return {
    page,
    console: logged,
    host: () => page.evaluate(() => (window as unknown as { testHost: Host }).testHost),
    post: (message) =>
      page.evaluate(
        (data) =>
          new Promise<void>((resolve) => {
            // Registered after the webview's own listener, so this runs once it has drawn.
            window.addEventListener('message', () => resolve(), { once: true });
            window.postMessage(data, '*');
          }),
        message,
      ),
  };
}
