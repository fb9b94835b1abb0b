// Runs a command with one test Docker engine (base image loaded) for all of it, then stops the engine:
//
//   node --import tsx test/docker/run-with-dockerd.ts -- <command> [args…]
//
// The command gets SANDBOX_AGENTS_TEST_DOCKER_HOST, so every Docker test in it shares the daemon
// (sharedTestDockerd) instead of starting its own. Exits with the command's exit code.
// - Docker prerequisites missing: the command runs without the variable (Docker tests skip, or fail on CI).
// - The variable already set: the command runs with that daemon; nothing is started.
// - The daemon or the image cannot be made: the command still runs without the variable, and the
//   wrapper exits non-zero even if the command passed.
import { spawn, type ChildProcess } from 'node:child_process';
import { DOCKER_HOST_ENV, dockerPrerequisites, log, startForTestRun } from './dockerd';

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const command = argv[0] === '--' ? argv.slice(1) : argv;
  if (command.length === 0) {
    log('usage: node --import tsx test/docker/run-with-dockerd.ts -- <command> [args…]');
    return 2;
  }

  // Signals sent to us alone (not to our process group) go to the command once it runs; one that
  // arrives while the daemon is being set up cancels the run (after cleaning up).
  let child: ChildProcess | undefined;
  let cancelled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (child) child.kill(sig);
    else cancelled ??= sig;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  let env: Record<string, string> = {};
  let stop: (() => Promise<void>) | undefined;
  let setupFailed = false;
  const missing = dockerPrerequisites();
  if (process.env[DOCKER_HOST_ENV]) {
    log(`using the daemon in ${DOCKER_HOST_ENV}: ${process.env[DOCKER_HOST_ENV]}`);
  } else if (missing) {
    log(`no test Docker engine: ${missing}`);
  } else {
    try {
      const run = await startForTestRun();
      env = run.env;
      stop = run.stop;
    } catch (e) {
      setupFailed = true;
      log(`could not set up the test Docker engine: ${(e as Error).stack ?? e}`);
    }
  }

  let code: number;
  if (cancelled) {
    log(`${cancelled} during setup: not running ${command[0]}`);
    code = 128 + (signalNumber(cancelled) ?? 1);
  } else {
    const running = spawn(command[0], command.slice(1), { stdio: 'inherit', env: { ...process.env, ...env } });
    child = running;
    code = await new Promise<number>((resolve) => {
      running.on('error', (e) => {
        log(`could not run ${command[0]}: ${e.message}`);
        resolve(127);
      });
      running.on('exit', (c, s) => resolve(c ?? (s ? 128 + (signalNumber(s) ?? 1) : 1)));
    });
  }

  if (stop) await stop().catch((e: Error) => log(`stopping the test Docker engine failed: ${e.message}`));
  return code === 0 && setupFailed ? 1 : code;
}

function signalNumber(s: NodeJS.Signals): number | undefined {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[s];
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    log(e.stack ?? String(e));
    process.exit(1);
  },
);
