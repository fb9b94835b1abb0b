/**
 * Sessions as host processes (no Docker; NOT sandboxed). Each session's PTY is owned by a small
 * detached "holder" process (`bridge.js hold`) that outlives the bridge, exactly as containers do:
 * a restarted bridge reconnects to the holder's unix socket and gets the output it missed.
 *
 * Holder wire format, both directions: [type u8][length u32 BE][payload].
 *   holder → bridge: DATA, HISTORY (once, first), EXIT (JSON {code, signal})
 *   bridge → holder: DATA (input), RESIZE (JSON {cols, rows}), KILL, PAUSE, RESUME (empty)
 * A holder ignores frame types it does not know, so an older holder simply keeps its socket's own
 * backpressure (pausing only when the socket is full).
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Emitter, RuntimeUnavailableError, type ExitInfo, type Runtime, type SandboxProcess, type SandboxSpec } from './runtime';
import type { BridgeLog } from '../log';

export const enum Frame {
  Data = 1,
  Exit = 2,
  History = 3,
  Resize = 4,
  Kill = 5,
  /** bridge → holder: stop reading the PTY (a client is behind) / read it again. */
  Pause = 6,
  Resume = 7,
}

const HISTORY_BYTES = 2 * 1024 * 1024;
const MAX_SOCKET_PATH = 100;

export function encodeFrame(type: Frame, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Writes a frame without copying its payload (header and payload in one writev); false when the socket is full. */
function writeFrame(sock: net.Socket, type: Frame, payload: Buffer): boolean {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(payload.length, 1);
  sock.cork();
  sock.write(head);
  const ok = sock.write(payload);
  sock.uncork();
  return ok;
}

/**
 * Splits a byte stream into frames, whatever the chunking. Payloads are views of the chunks read
 * (no copy) unless a frame spans chunks; only a frame's own bytes are ever copied together.
 */
export class FrameReader {
  /** The start of a frame that continues in later chunks. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  constructor(private readonly onFrame: (type: Frame, payload: Buffer) => void) {}
  push(chunk: Buffer): void {
    let at = 0;
    if (this.partialBytes > 0) {
      if (this.partialBytes < 5) {
        // Even the frame's header was cut: complete it first.
        const take = Math.min(5 - this.partialBytes, chunk.length);
        this.partial.push(chunk.subarray(0, take));
        this.partialBytes += take;
        at = take;
        if (this.partialBytes < 5) return;
        this.partial = [Buffer.concat(this.partial)];
      }
      const total = 5 + this.partial[0].readUInt32BE(1);
      const need = total - this.partialBytes;
      if (chunk.length - at < need) {
        this.partial.push(chunk.subarray(at));
        this.partialBytes += chunk.length - at;
        return;
      }
      this.partial.push(chunk.subarray(at, at + need));
      at += need;
      const frame = Buffer.concat(this.partial, total);
      this.partial = [];
      this.partialBytes = 0;
      this.onFrame(frame.readUInt8(0) as Frame, frame.subarray(5));
    }
    while (chunk.length - at >= 5) {
      const len = chunk.readUInt32BE(at + 1);
      if (chunk.length - at < 5 + len) break;
      const type = chunk.readUInt8(at) as Frame;
      const payload = chunk.subarray(at + 5, at + 5 + len);
      at += 5 + len;
      this.onFrame(type, payload);
    }
    if (at < chunk.length) {
      this.partial = [chunk.subarray(at)];
      this.partialBytes = chunk.length - at;
    }
  }
}

export interface HostRuntimeOptions {
  stateDir: string;
  /** The bridge script to run as `hold` (dist/bridge.js). */
  bridgeScript: string;
}

export class HostRuntime implements Runtime {
  readonly kind = 'host' as const;
  readonly sandboxed = false;
  private readonly socketDir: string;

  constructor(
    private readonly opts: HostRuntimeOptions,
    private readonly log: BridgeLog,
  ) {
    let dir = join(opts.stateDir, 'h');
    if (dir.length + 40 > MAX_SOCKET_PATH) dir = join(tmpdir(), `sa-h-${process.getuid?.() ?? 'u'}`);
    this.socketDir = dir;
  }

  async preflight(): Promise<void> {
    try {
      await import('@lydell/node-pty');
    } catch (err) {
      throw new RuntimeUnavailableError(`the host runtime needs node-pty, which failed to load: ${(err as Error).message}`);
    }
  }

  async start(spec: SandboxSpec): Promise<SandboxProcess> {
    mkdirSync(this.socketDir, { recursive: true, mode: 0o700 });
    chmodSync(this.socketDir, 0o700);
    const socket = join(this.socketDir, `${spec.sessionId.replace(/-/g, '').slice(0, 24)}.sock`);
    rmSync(socket, { force: true });
    // Like a container's /home/sandbox: a home of its own per session (no user dotfiles, room for
    // seeded CLI configs), working in the mounted workspace or the session dir.
    const sessionDir = join(this.opts.stateDir, 'sessions', spec.sessionId);
    const home = join(sessionDir, 'home');
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const cwd = spec.workdir ?? spec.workspacePath ?? sessionDir;
    // Only what a program needs to run, never the rest of the user's environment: no model keys, tokens,
    // SSH agent, GPG agent, cloud credentials, display or session bus (issue: secrets never reach a sandbox).
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && isPassedThrough(k)) env[k] = v;
    const holder = spawn(
      process.execPath,
      [this.opts.bridgeScript, 'hold', '--socket', socket, '--cols', String(spec.cols), '--rows', String(spec.rows), '--cwd', cwd, '--', ...spec.command],
      {
        detached: true,
        stdio: 'ignore',
        env: { ...env, HOME: home, ...spec.env, SANDBOX_AGENTS_HOLDER: '1', ...(process.env.ELECTRON_RUN_AS_NODE ? { ELECTRON_RUN_AS_NODE: '1' } : {}) },
      },
    );
    holder.unref();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const proc = await this.connect(socket, spec.sessionId).catch(() => undefined);
      if (proc) return proc;
      if (holder.exitCode !== null || Date.now() > deadline) {
        try {
          if (holder.pid) process.kill(-holder.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        throw new RuntimeUnavailableError(`the session process did not start (holder exit ${holder.exitCode ?? 'timeout'})`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async adopt(ref: string, sessionId: string): Promise<SandboxProcess | undefined> {
    if (!existsSync(ref)) return undefined;
    return this.connect(ref, sessionId).catch(() => undefined);
  }

  async remove(ref: string): Promise<void> {
    // The holder removes its socket when its program ends; a leftover one goes here.
    rmSync(ref, { force: true });
  }

  async running(): Promise<{ ref: string; sessionId: string }[]> {
    if (!existsSync(this.socketDir)) return [];
    return readdirSync(this.socketDir)
      .filter((f) => f.endsWith('.sock'))
      .map((f) => ({ ref: join(this.socketDir, f), sessionId: '' }));
  }

  private connect(path: string, sessionId: string): Promise<SandboxProcess> {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection(path);
      sock.once('error', reject);
      sock.once('connect', () => {
        sock.off('error', reject);
        const data = new Emitter<Buffer>(true);
        const exit = new Emitter<ExitInfo>(true);
        let history = Buffer.alloc(0);
        let gotHistory!: () => void;
        const historyReady = new Promise<void>((r) => (gotHistory = r));
        let done = false;
        let destroying = false;
        const finish = (info: ExitInfo) => {
          if (done) return;
          done = true;
          sock.destroy();
          if (!destroying) exit.emit(info);
        };
        const reader = new FrameReader((type, payload) => {
          if (type === Frame.History) {
            history = Buffer.from(payload);
            gotHistory();
          } else if (type === Frame.Data) data.emit(payload);
          else if (type === Frame.Exit) {
            let info: ExitInfo = { code: null };
            try {
              info = JSON.parse(payload.toString('utf8')) as ExitInfo;
            } catch {
              /* keep default */
            }
            finish(info);
          }
        });
        sock.on('data', (c: Buffer) => reader.push(c));
        sock.on('error', () => undefined);
        sock.on('close', () => {
          gotHistory();
          if (!done) finish({ code: null, reason: 'the session process is gone' });
        });
        const send = (type: Frame, payload: Buffer | string) => {
          if (!done && !sock.destroyed) sock.write(encodeFrame(type, payload));
        };
        resolve({
          ref: path,
          write: (d) => send(Frame.Data, typeof d === 'string' ? Buffer.from(d) : d),
          resize: (cols, rows) => send(Frame.Resize, JSON.stringify({ cols, rows })),
          onData: (l) => data.on(l),
          onExit: (l) => exit.on(l),
          // The holder stops reading the PTY at once: otherwise it keeps reading until this socket's
          // buffers are full (hundreds of KiB), all of it still to show after a Ctrl+C.
          pause: () => {
            send(Frame.Pause, '');
            sock.pause();
          },
          resume: () => {
            sock.resume();
            send(Frame.Resume, '');
          },
          history: async () => {
            await historyReady;
            return history;
          },
          destroy: async () => {
            destroying = true;
            send(Frame.Kill, '');
            await new Promise<void>((r) => {
              if (sock.destroyed) return r();
              sock.once('close', () => r());
              setTimeout(() => {
                sock.destroy();
                r();
              }, 3000);
            });
            rmSync(path, { force: true });
            // The session's own home goes with it, as a container's filesystem does; its work tree
            // (a clone or a worktree in the session folder) stays: nothing the agent made is lost.
            rmSync(join(this.opts.stateDir, 'sessions', sessionId, 'home'), { recursive: true, force: true });
            finish({ code: null, reason: 'stopped' });
          },
          detach: () => {
            done = true;
            sock.destroy();
          },
        });
        this.log.debug(`connected to holder of ${sessionId}`);
      });
    });
  }
}

/**
 * The holder process (`bridge.js hold --socket S --cols C --rows R --cwd D -- cmd…`): owns one PTY,
 * keeps its recent output, serves one bridge connection at a time over a 0600 unix socket, and
 * exits once the program has exited and a bridge has been told (or after a grace period).
 */
export async function runHolder(argv: string[]): Promise<void> {
  const sep = argv.indexOf('--');
  const flags = argv.slice(0, sep < 0 ? argv.length : sep);
  const command = sep < 0 ? [] : argv.slice(sep + 1);
  const flag = (name: string) => {
    const i = flags.indexOf(`--${name}`);
    return i >= 0 ? flags[i + 1] : undefined;
  };
  const socketPath = flag('socket');
  if (!socketPath || command.length === 0) throw new Error('usage: bridge.js hold --socket PATH [--cols N --rows N --cwd DIR] -- command…');
  const pty = await import('@lydell/node-pty');
  // Bytes in, bytes out: with `encoding: null` node-pty hands out the Buffers it reads (no decoding to
  // strings and encoding back), and takes Buffers. That mode also leaves the terminal's IUTF8 flag
  // unset (line editing would erase a byte, not a character), so the program is started by a shell
  // that sets it and then becomes the program (exec: same process, same pid).
  const term = pty.spawn('/bin/sh', ['-c', 'stty iutf8 2>/dev/null; exec "$0" "$@"', ...command], {
    encoding: null,
    name: 'xterm-256color',
    cols: Number(flag('cols') ?? 100),
    rows: Number(flag('rows') ?? 30),
    cwd: flag('cwd') ?? process.cwd(),
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'ELECTRON_RUN_AS_NODE' && k !== 'SANDBOX_AGENTS_HOLDER')) as Record<string, string>,
  });
  let history: Buffer[] = [];
  let historyBytes = 0;
  let client: net.Socket | undefined;
  let exitInfo: string | undefined;
  // Reads from a PTY are small (a few KiB): those made in one turn of the event loop go out as one
  // frame, at the end of the turn (an echo is not delayed) or once 64 KiB are waiting.
  let outgoing: Buffer[] = [];
  let outgoingBytes = 0;
  let sendTimer: NodeJS.Immediate | undefined;
  const sendOutput = () => {
    if (sendTimer) clearImmediate(sendTimer);
    sendTimer = undefined;
    if (outgoingBytes === 0) return;
    const payload = outgoing.length === 1 ? outgoing[0] : Buffer.concat(outgoing, outgoingBytes);
    outgoing = [];
    outgoingBytes = 0;
    // A bridge that stops reading pauses the PTY: the program blocks instead of this process
    // buffering without bound.
    if (client && !writeFrame(client, Frame.Data, payload)) {
      holdBack('socket');
      client.once('drain', () => letGo('socket'));
    }
  };
  // Why the PTY is not being read: the bridge asked (a client is behind), or the socket is full.
  const held = new Set<'bridge' | 'socket'>();
  const holdBack = (why: 'bridge' | 'socket') => {
    if (held.size === 0) term.pause();
    held.add(why);
  };
  const letGo = (why: 'bridge' | 'socket') => {
    if (!held.delete(why) || held.size > 0) return;
    term.resume();
  };
  term.onData((d: string | Buffer) => {
    const b = d as Buffer; // Buffer mode (the typings only know strings)
    history.push(b);
    historyBytes += b.length;
    while (historyBytes > HISTORY_BYTES && history.length > 1) historyBytes -= history.shift()!.length;
    if (!client) return;
    outgoing.push(b);
    outgoingBytes += b.length;
    if (outgoingBytes >= 64 * 1024) sendOutput();
    else sendTimer ??= setImmediate(sendOutput);
  });
  const quit = () => {
    server.close();
    rmSync(socketPath, { force: true });
    process.exit(0);
  };
  term.onExit(({ exitCode, signal }) => {
    exitInfo = JSON.stringify({ code: exitCode, signal: signal ? String(signal) : null });
    sendOutput();
    if (client) {
      client.end(encodeFrame(Frame.Exit, exitInfo), () => quit());
      setTimeout(quit, 2000);
    } else setTimeout(quit, 10 * 60_000).unref();
  });
  const server = net.createServer((sock) => {
    client?.destroy();
    client = sock;
    // A new bridge starts reading: holds of the previous one are gone with it.
    if (held.size) {
      held.clear();
      term.resume();
    }
    // The history has everything, output not yet sent to the previous bridge included.
    outgoing = [];
    outgoingBytes = 0;
    sock.write(encodeFrame(Frame.History, Buffer.concat(history)));
    history = [Buffer.concat(history)];
    if (exitInfo) {
      sock.end(encodeFrame(Frame.Exit, exitInfo), () => quit());
      return;
    }
    const reader = new FrameReader((type, payload) => {
      if (type === Frame.Data) term.write(payload as unknown as string); // Buffer mode: written as is
      else if (type === Frame.Resize) {
        try {
          const { cols, rows } = JSON.parse(payload.toString('utf8')) as { cols: number; rows: number };
          term.resize(cols, rows);
        } catch {
          /* ignore a malformed resize */
        }
      } else if (type === Frame.Pause) {
        // What the PTY already gave goes out; nothing more is read until RESUME.
        sendOutput();
        holdBack('bridge');
      } else if (type === Frame.Resume) {
        letGo('bridge');
      } else if (type === Frame.Kill) {
        try {
          process.kill(-term.pid, 'SIGHUP');
        } catch {
          term.kill('SIGHUP');
        }
        setTimeout(() => term.kill('SIGKILL'), 1000).unref();
      }
    });
    sock.on('data', (c: Buffer) => reader.push(c));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (client === sock) {
        client = undefined;
        outgoing = [];
        outgoingBytes = 0;
        // No bridge: the program runs on (its output goes to the history).
        held.clear();
        term.resume();
      }
    });
  });
  const old = process.umask(0o177);
  server.listen(socketPath, () => process.umask(old));
  process.on('SIGTERM', () => {
    try {
      process.kill(-term.pid, 'SIGHUP');
    } catch {
      term.kill('SIGHUP');
    }
    setTimeout(quit, 1000);
  });
}

/** The user's environment variables a host session inherits (everything else comes from the spec). */
const PASSED_THROUGH = new Set(['PATH', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR']);
export function isPassedThrough(name: string): boolean {
  return PASSED_THROUGH.has(name) || name.startsWith('LC_');
}
