/** How a test tier treats a missing system dependency: skipped locally, a failure on CI. */

/** True on CI (or when asked): a missing dependency then fails the test instead of skipping it. */
export function requireAllTiers(): boolean {
  const ci = process.env.CI?.toLowerCase();
  return ci === 'true' || ci === '1' || process.env.SANDBOX_AGENTS_REQUIRE_ALL_TIERS === '1';
}

/** For a node:test context: undefined when nothing is missing; otherwise throws on CI, or skips the
 *  test and returns the reason (the caller returns on it). */
export function skipOrFail(t: { skip(message?: string): void }, missing: string | undefined): string | undefined {
  if (!missing) return undefined;
  if (requireAllTiers()) throw new Error(missing);
  t.skip(missing);
  return missing;
}
