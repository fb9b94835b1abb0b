import { ttySuite } from './ttySuite';

// The host runtime runs each session's shell as a host process owned by a detached holder.
ttySuite('host runtime', async () => ({
  options: { runtime: 'host' },
  killFromOutside: async (socketPath) => {
    // The holder's PTY child is the shell: find it by the holder's socket argument and kill it.
    const { execSync } = await import('node:child_process');
    const holder = execSync(`ps -eo pid,args`, { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.includes(' hold ') && l.includes(socketPath));
    if (!holder) throw new Error(`no holder for ${socketPath}`);
    const pid = Number(holder.trim().split(/\s+/)[0]);
    const children = execSync(`ps -o pid= --ppid ${pid}`, { encoding: 'utf8' }).trim().split(/\s+/).map(Number).filter(Boolean);
    for (const c of children) process.kill(c, 'SIGKILL');
  },
  release: async () => undefined,
}));
