import * as assert from 'node:assert/strict';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';

const EXTENSION = vscode.extensions.getExtension('bitmap-lab.bitmap-lab')!;
const example = () => vscode.Uri.file(path.join(EXTENSION.extensionPath, 'examples', 'failed-incremental-always.bitmaplab.json'));

suite('Scenario files', () => {
  test('opening an example runs it: every expectation holds, and its timeline can be stepped', async () => {
    const opened = (await vscode.commands.executeCommand('bitmapLab.openScenario', example())) as { frames: number; frame: number; failures: string[] };
    assert.deepEqual(opened.failures, []);
    assert.ok(opened.frames > 100, `${opened.frames} frames`);
    assert.equal(await vscode.commands.executeCommand('bitmapLab.stepForward'), 1);
    assert.equal(await vscode.commands.executeCommand('bitmapLab.stepBack'), 0);
    const failure = (await vscode.commands.executeCommand('bitmapLab.nextFailure')) as number;
    const cleanup = (await vscode.commands.executeCommand('bitmapLab.nextCleanup')) as number;
    assert.ok(failure > 0 && cleanup > failure, `failure at ${failure}, cleanup at ${cleanup}`);
    assert.equal(await vscode.commands.executeCommand('bitmapLab.lastFrame'), opened.frames - 1);
    // The Bitmap Lab panel shows the recording beside the editor (tabs appear a moment later).
    const panels = () => vscode.window.tabGroups.all.flatMap((group) => group.tabs).filter((tab) => tab.input instanceof vscode.TabInputWebview && tab.input.viewType.endsWith('bitmapLab.player'));
    for (let waited = 0; waited < 5000 && !panels().length; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(panels().length, 1);
    assert.match(panels()[0].label, /Bitmap Lab: A failed incremental backup, bitmap-mode always/);
  });

  test('a broken expectation becomes a diagnostic on its step', async () => {
    const text = (await vscode.workspace.fs.readFile(example())).toString().replace('"count": 12648448', '"count": 1');
    const file = vscode.Uri.file(path.join(os.tmpdir(), `broken-${Date.now()}.bitmaplab.json`));
    await vscode.workspace.fs.writeFile(file, Buffer.from(text));
    const opened = (await vscode.commands.executeCommand('bitmapLab.openScenario', file)) as { failures: string[] };
    assert.equal(opened.failures.length, 1);
    const diagnostics = vscode.languages.getDiagnostics(file);
    assert.equal(diagnostics.length, 1);
    assert.match(diagnostics[0].message, /bitmap drive0\/bitmap0: count is 12648448, expected 1/);
  });

  test('a schema error becomes a diagnostic at its line, and nothing runs', async () => {
    const file = vscode.Uri.file(path.join(os.tmpdir(), `bad-${Date.now()}.bitmaplab.json`));
    await vscode.workspace.fs.writeFile(file, Buffer.from('{\n  "title": "t",\n  "images": [],\n  "steps": [{"bogus": 1}]\n}\n'));
    assert.equal(await vscode.commands.executeCommand('bitmapLab.openScenario', file), undefined);
    const lines = vscode.languages.getDiagnostics(file).map((d) => `${d.range.start.line}: ${d.message}`).sort();
    assert.deepEqual(lines, ['2: images: must NOT have fewer than 1 items', "3: steps[0]: unexpected member 'bogus'"]);
  });
});

suite('Image files', () => {
  test('the image editor opens a qcow2 read-only', async () => {
    const { createQcow2 } = require(path.join(EXTENSION.extensionPath, 'out', 'src', 'engine', 'drivers', 'qcow2', 'create.js'));
    const file = path.join(os.tmpdir(), `image-${Date.now()}.qcow2`);
    createQcow2(file, { size: 8 << 20 });
    const before = (await vscode.workspace.fs.readFile(vscode.Uri.file(file))).toString();
    await vscode.commands.executeCommand('vscode.openWith', vscode.Uri.file(file), 'bitmapLab.image');
    const tab = vscode.window.tabGroups.activeTabGroup.activeTab;
    assert.ok(tab?.input instanceof vscode.TabInputCustom && tab.input.viewType === 'bitmapLab.image', 'the custom editor is open');
    assert.equal((await vscode.workspace.fs.readFile(vscode.Uri.file(file))).toString(), before);
  });
});
