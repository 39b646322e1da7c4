/**
 * A browser page standing in for the Bitmap Lab panel in VS Code: the panel's
 * own HTML and CSP from playerHtml(), the built dist/player.js and
 * dist/player.css served from a made-up origin, a stub acquireVsCodeApi that
 * keeps what the page posts, and a theme's variables on <html> as VS Code
 * sets them.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { playerHtml } from '../../src/extension/player-html';
import { newNonce } from '../../src/extension/playground-html';
import { PROTOCOL_VERSION, type LaneColours } from '../../src/protocol';
import type { RecordedRun } from '../../webview/player/runs-format';
import { THEMES, type ThemeName } from './theme';

const PROJECT = resolve(__dirname, '../../..');
const ORIGIN = 'https://bitmap-lab-player.test';
const SERVED: Record<string, string> = { '/dist/player.js': 'text/javascript', '/dist/player.css': 'text/css' };

export interface PlayerPanelPage {
  page: Page;
  /** What the page posted to the host. */
  posted(): Promise<unknown[]>;
  /** Every state the page kept with setState, oldest first. */
  states(): Promise<unknown[]>;
  /** Posts as the extension host would, and resolves once the page has handled it. */
  post(message: unknown): Promise<void>;
  /** Page errors, console errors and warnings, and CSP violations, in order. */
  problems: string[];
  /** Switches the page to a theme, as VS Code does: the body's class and the variables on <html>. */
  theme(name: ThemeName): Promise<void>;
}

export async function openPlayerPanel(browser: Browser, run: RecordedRun, options: { colours?: LaneColours; frame?: number; pin?: number; theme?: ThemeName } = {}): Promise<PlayerPanelPage> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') problems.push(`${message.type()}: ${message.text()}`);
  });
  await page.route(`${ORIGIN}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/') {
      const html = playerHtml({
        cspSource: ORIGIN,
        nonce: newNonce(),
        scriptUri: `${ORIGIN}/dist/player.js`,
        styleUri: `${ORIGIN}/dist/player.css`,
        run,
        scenario: 'file:///examples/test.bitmaplab.json',
        frame: options.frame ?? 0,
        ...(options.pin !== undefined && { pin: options.pin }),
        colours: { type: 'colours', version: PROTOCOL_VERSION, colours: options.colours ?? {} },
        reducedMotion: true,
      });
      return route.fulfill({ contentType: 'text/html', body: html });
    }
    if (Object.hasOwn(SERVED, path)) return route.fulfill({ contentType: SERVED[path], body: readFileSync(resolve(PROJECT, path.slice(1))) });
    return route.fulfill({ status: 404 });
  });
  // Runs before the page's own script, as VS Code's preload does.
  await page.addInitScript(() => {
    const posted: unknown[] = [];
    const states: unknown[] = [];
    Object.assign(window, {
      posted,
      states,
      acquireVsCodeApi: () => ({
        postMessage: (message: unknown) => posted.push(structuredClone(message)),
        setState: (state: unknown) => states.push(structuredClone(state)),
        getState: () => undefined,
      }),
    });
    document.addEventListener('securitypolicyviolation', (event) => console.error(`CSP blocked ${event.violatedDirective} ${event.blockedURI}`));
  });
  const theme = async (name: ThemeName) => {
    await page.evaluate(
      ([className, variables]) => {
        const style = document.documentElement.style;
        // As VS Code does on a theme change: its own variables replaced, anything else left alone.
        for (const property of [...style].filter((p) => p.startsWith('--vscode-'))) style.removeProperty(property);
        for (const [property, value] of Object.entries(variables)) style.setProperty(property, value);
        document.body.classList.remove('vscode-light', 'vscode-dark', 'vscode-high-contrast');
        document.body.classList.add(className);
      },
      [THEMES[name].className, THEMES[name].variables] as const,
    );
    // The player redraws on the next animation frame after a theme change.
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  };
  await page.goto(`${ORIGIN}/`);
  await page.waitForSelector('.run .lane');
  await theme(options.theme ?? 'dark');
  return {
    page,
    problems,
    theme,
    posted: () => page.evaluate(() => (window as unknown as { posted: unknown[] }).posted),
    states: () => page.evaluate(() => (window as unknown as { states: unknown[] }).states),
    post: (message) =>
      page.evaluate(
        (data) =>
          new Promise<void>((resolve) => {
            window.addEventListener('message', () => requestAnimationFrame(() => requestAnimationFrame(() => resolve())), { once: true });
            window.postMessage(data, '*');
          }),
        message,
      ),
  };
}
