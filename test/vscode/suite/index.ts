// Extension-host test entry, in the `@vscode/test-electron` shape: VS Code loads this module in the
// extension host and awaits `run()`. It runs every `*.test.js` bundled beside it (dist-test/vscode/)
// with mocha (BDD: describe/it), prints each result, and writes them all as JSON to the file named by
// SANDBOX_AGENTS_TEST_RESULTS when that is set (how test/vscode/server.ts collects them).
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Mocha from 'mocha';

/** Same name as RESULTS_ENV in test/vscode/server.ts, which this extension-host bundle does not import. */
const RESULTS_ENV = 'SANDBOX_AGENTS_TEST_RESULTS';

export interface TestResult {
  title: string;
  fullTitle: string;
  state: 'passed' | 'failed' | 'pending';
  durationMs: number;
  error?: string;
}

/** Prints one line per test to the console and keeps the results file up to date after each one, so
 *  a run that hangs still leaves what it finished. Hook failures count as failed results. */
class ResultsReporter extends Mocha.reporters.Base {
  private readonly results: TestResult[] = [];

  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING, EVENT_RUN_END } = Mocha.Runner.constants;
    runner.on(EVENT_TEST_PASS, (test) => this.add(test, 'passed'));
    runner.on(EVENT_TEST_FAIL, (test, err) => this.add(test, 'failed', err));
    runner.on(EVENT_TEST_PENDING, (test) => this.add(test, 'pending'));
    runner.on(EVENT_RUN_END, () => {
      const count = (state: TestResult['state']) => this.results.filter((r) => r.state === state).length;
      console.log(`[mocha] ${count('passed')} passed, ${count('failed')} failed, ${count('pending')} pending`);
      this.write();
    });
  }

  private add(test: Mocha.Runnable, state: TestResult['state'], err?: unknown): void {
    const result: TestResult = {
      title: test.title,
      fullTitle: test.fullTitle(),
      state,
      durationMs: test.duration ?? 0,
      ...(err === undefined ? {} : { error: describeError(err) }),
    };
    this.results.push(result);
    const mark = state === 'passed' ? 'ok' : state === 'failed' ? 'FAIL' : 'skip';
    console.log(`[mocha] ${mark} ${result.fullTitle}${result.error ? `\n${result.error}` : ''}`);
    this.write();
  }

  private write(): void {
    const file = process.env[RESULTS_ENV];
    if (file) writeFileSync(file, JSON.stringify(this.results, null, 2));
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return String(err);
}

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: ResultsReporter });
  // SANDBOX_AGENTS_SUITE=local,agents runs only those suite files (while working on them).
  const only = process.env.SANDBOX_AGENTS_SUITE?.split(',').map((s) => s.trim()).filter(Boolean);
  for (const file of readdirSync(__dirname).filter((f) => f.endsWith('.test.js') && (!only?.length || only.includes(f.replace(/\.test\.js$/, '')))).sort()) {
    mocha.addFile(join(__dirname, file));
  }
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  if (failures > 0) throw new Error(`${failures} extension-host test(s) failed`);
}
