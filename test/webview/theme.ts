/**
 * The --vscode-* variables the panel uses, as VS Code's Dark Modern theme sets
 * them on the webview's <html>; the test page sets them the same way.
 */
export const DARK_MODERN: Record<string, string> = {
  '--vscode-font-family': 'system-ui, "Ubuntu", "Droid Sans", sans-serif',
  '--vscode-font-size': '13px',
  '--vscode-editor-font-family': '"Droid Sans Mono", monospace',
  '--vscode-editor-font-size': '13px',
  '--vscode-foreground': '#cccccc',
  '--vscode-descriptionForeground': '#9d9d9d',
  '--vscode-errorForeground': '#f85149',
  '--vscode-focusBorder': '#0078d4',
  '--vscode-editor-background': '#1f1f1f',
  '--vscode-editorWidget-background': '#202020',
  '--vscode-widget-border': '#313131',
  '--vscode-widget-shadow': 'rgba(0, 0, 0, 0.36)',
  '--vscode-input-background': '#313131',
  '--vscode-input-border': '#3c3c3c',
  '--vscode-textCodeBlock-background': '#2b2b2b',
  '--vscode-editorHoverWidget-background': '#202020',
  '--vscode-editorHoverWidget-foreground': '#cccccc',
  '--vscode-editorHoverWidget-border': '#454545',
  '--vscode-charts-blue': '#3794ff',
  '--vscode-editorWarning-foreground': '#cca700',
  '--vscode-charts-green': '#89d185',
  '--vscode-charts-purple': '#b180d7',
};
