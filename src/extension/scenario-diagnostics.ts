/** Problems of a scenario file where they are: schema errors, and failed expectations at their step. */
import { findNodeAtLocation, parseTree } from 'jsonc-parser';
import * as vscode from 'vscode';
import type { ScenarioError } from '../engine/scenario/parse';
import type { ScenarioRun } from '../engine/scenario/runner';

export function syntaxDiagnostics(errors: ScenarioError[]): vscode.Diagnostic[] {
  return errors.map((error) => {
    const at = new vscode.Position(error.line - 1, Math.max(0, error.column - 1));
    const diagnostic = new vscode.Diagnostic(new vscode.Range(at, at.translate(0, 1)), `${error.path || 'scenario'}: ${error.message}`, vscode.DiagnosticSeverity.Error);
    diagnostic.source = 'Bitmap Lab';
    return diagnostic;
  });
}

/** A failed expectation is shown on the step that states it. */
export function runDiagnostics(document: vscode.TextDocument, run: ScenarioRun): vscode.Diagnostic[] {
  const tree = parseTree(document.getText());
  return run.steps.flatMap((step) => {
    const node = tree && findNodeAtLocation(tree, ['steps', step.index]);
    const start = document.positionAt(node?.offset ?? 0);
    const end = document.positionAt((node?.offset ?? 0) + Math.min(node?.length ?? 1, 1));
    return step.failures.map((failure) => {
      const diagnostic = new vscode.Diagnostic(new vscode.Range(start, end), `steps[${step.index}]: ${failure}`, vscode.DiagnosticSeverity.Error);
      diagnostic.source = 'Bitmap Lab';
      return diagnostic;
    });
  });
}
