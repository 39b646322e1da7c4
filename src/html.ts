/** Text for HTML pages we write: element content and double-quoted attribute values. */
export const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);

/** JSON inside a <script> element: only `<` could end it early, and in JSON it can only stand in a string. */
export const jsonInScript = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');
