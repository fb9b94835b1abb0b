// A node:test reporter that prints only the plain closing line `N passed, N failed, N skipped`,
// counting tests (not suites), including tests reported from inside VS Code.
export default async function* summary(source) {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for await (const event of source) {
    if (event.type !== 'test:pass' && event.type !== 'test:fail') continue;
    const d = event.data.details ?? {};
    if (d.type === 'suite') continue;
    if (event.type === 'test:fail') failed++;
    else if (event.data.skip || event.data.todo) skipped++;
    else passed++;
  }
  yield `${passed} passed, ${failed} failed, ${skipped} skipped\n`;
}
