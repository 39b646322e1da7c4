/**
 * Tests that need an outside tool skip loudly where it is missing, and fail
 * under CI=true, where the tool must have been installed.
 */
export function skipWithout(available: boolean, tool: string): string | false {
  if (available) return false;
  if (process.env.CI === 'true') throw new Error(`${tool} is required under CI=true but is not installed`);
  const reason = `${tool} is not installed`;
  console.warn(`\n*** SKIPPED: ${reason}; these tests did not run ***\n`);
  return reason;
}
