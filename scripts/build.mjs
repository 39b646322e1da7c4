// Builds the bundles: extension host, webview, CLI, and the timeline player an exported page inlines.
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
// ESM entries first: jsonc-parser's UMD build cannot be bundled.
const common = { bundle: true, sourcemap: true, logLevel: 'warning', target: 'es2022', mainFields: ['module', 'main'] };
const bundles = [
  { ...common, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js', platform: 'node', format: 'cjs', external: ['vscode'] },
  { ...common, entryPoints: ['webview/main.ts'], outfile: 'dist/webview.js', platform: 'browser', format: 'iife' },
  { ...common, entryPoints: ['src/cli/cli.ts'], outfile: 'dist/cli.js', platform: 'node', format: 'cjs', banner: { js: '#!/usr/bin/env node' } },
  // Inlined into exported pages by src/cli/html-export.ts: minified, and with its map kept beside it
  // rather than linked, so the page never asks for a file.
  { ...common, entryPoints: ['webview/player/main.ts'], outfile: 'dist/player.js', platform: 'browser', format: 'iife', minify: true, sourcemap: 'external' },
  // Stylesheets with media/shared.css bundled in: the player's is inlined by exported pages too.
  { bundle: true, minify: true, logLevel: 'warning', entryPoints: ['media/player.css'], outfile: 'dist/player.css' },
  { bundle: true, minify: true, logLevel: 'warning', entryPoints: ['media/playground.css'], outfile: 'dist/playground.css' },
];

if (watch) {
  for (const options of bundles) await (await esbuild.context(options)).watch();
  console.log('watching for changes');
} else {
  await Promise.all(bundles.map((options) => esbuild.build(options)));
}
