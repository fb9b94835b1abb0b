/**
 * Sessions as Docker containers (dockerode): one container per session, `Tty: true`, no network,
 * non-root, no capabilities, no privilege escalation, resource limits, labelled so a restarted
 * bridge finds them again. Containers outlive the bridge.
 */
import Docker from 'dockerode';
import type { Duplex } from 'node:stream';
import { Emitter, RuntimeUnavailableError, withTimeout, type ExitInfo, type Runtime, type SandboxProcess, type SandboxSpec } from './runtime';
import type { BridgeLog } from '../log';

export const LABEL_SESSION = 'sandbox-agents.session';
export const LABEL_AGENT = 'sandbox-agents.agent';
export const LABEL_BRIDGE = 'sandbox-agents.bridge';
/** Output replayed into the mirror after adoption: the container log's tail, at most this much. */
const HISTORY_BYTES = 2 * 1024 * 1024;

/** Harness images, built when missing or changed (bridge/images.ts). */
export interface ImageSource {
  ensure(harness: string, opts: { signal?: AbortSignal; onProgress?: (e: { step?: string; line: string }) => void }): Promise<string>;
  log(harness: string): string | undefined;
}

export interface DockerRuntimeOptions {
  /** `unix:///var/run/docker.sock`, `tcp://host:port`, or undefined for DOCKER_HOST / the default socket. */
  dockerHost?: string;
  /** Image for sessions that name none (`shell` with an explicit shell image). */
  image?: string;
  /** Builds the harness images on this runtime's daemon. */
  images?: (docker: Docker) => ImageSource;
  /** uid:gid inside the container (default: the bridge's own user, so files in a mounted workspace
   *  stay the user's; 1001:1001 when the bridge runs as root). */
  user?: string;
}

/** The container's user: the bridge's own uid:gid, except root (then the images' `sandbox`, 1001). */
export function containerUser(): string {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  return uid === undefined || uid === 0 || gid === undefined ? '1001:1001' : `${uid}:${gid}`;
}

export function dockerOptions(host: string | undefined): Docker.DockerOptions {
  const h = host ?? process.env.DOCKER_HOST;
  if (!h) return { socketPath: '/var/run/docker.sock' };
  if (h.startsWith('unix://')) return { socketPath: h.slice('unix://'.length) };
  if (h.startsWith('npipe://')) return { socketPath: h.slice('npipe://'.length) };
  const url = new URL(h.replace(/^tcp:/, 'http:'));
  return { host: url.hostname, port: Number(url.port || 2375), protocol: url.protocol === 'https:' ? 'https' : 'http' };
}

function describeHost(host: string | undefined): string {
  return host ?? process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock';
}

export class DockerRuntime implements Runtime {
  readonly kind = 'docker' as const;
  readonly sandboxed = true;
  private readonly docker: Docker;
  private readonly images: ImageSource | undefined;
  private readonly user: string;

  constructor(
    private readonly opts: DockerRuntimeOptions,
    private readonly log: BridgeLog,
  ) {
    this.docker = new Docker(dockerOptions(opts.dockerHost));
    this.images = opts.images?.(this.docker);
    this.user = opts.user ?? containerUser();
  }

  sandboxUid(): number {
    return Number(this.user.split(':')[0]);
  }

  async prepareImage(harness: string, opts: { signal?: AbortSignal; onProgress?: (line: string) => void }): Promise<string> {
    if (!this.images) {
      if (this.opts.image) return this.opts.image;
      throw new RuntimeUnavailableError('this bridge cannot build harness images');
    }
    return this.images.ensure(harness, { signal: opts.signal, onProgress: (e) => opts.onProgress?.(e.step ?? e.line) });
  }

  buildLog(harness: string): string | undefined {
    return this.images?.log(harness);
  }

  async preflight(): Promise<void> {
    try {
      await withTimeout(this.docker.ping(), 5000, 'no answer within 5 s');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'ENOENT' ? 'no Docker socket there' : e.code === 'EACCES' ? 'permission denied (is your user in the docker group?)' : e.code === 'ECONNREFUSED' ? 'connection refused (is the Docker daemon running?)' : e.message;
      throw new RuntimeUnavailableError(`Docker is not reachable at ${describeHost(this.opts.dockerHost)}: ${why}`);
    }
  }

  async start(spec: SandboxSpec): Promise<SandboxProcess> {
    const image = spec.image ?? this.opts.image;
    if (!image) throw new RuntimeUnavailableError(`no image for the ${spec.harness} harness`);
    if (!spec.image) await this.ensureImage(image);
    const binds = spec.binds
      ? spec.binds.map((b) => `${b.source}:${b.target}:${b.readOnly ? 'ro' : 'rw'}`)
      : spec.workspacePath
        ? [`${spec.workspacePath}:/work/repo:rw`]
        : [];
    const workdir = spec.workdir ?? (spec.workspacePath ? '/work/repo' : undefined);
    // A restarted session reuses its name: a leftover container of it goes first.
    await this.docker
      .getContainer(`sandbox-agents-${spec.sessionId}`)
      .remove({ force: true })
      .catch(() => undefined);
    const container = await this.docker.createContainer({
      name: `sandbox-agents-${spec.sessionId}`,
      Image: image,
      Cmd: spec.command,
      User: spec.binds ? this.user : (this.opts.user ?? '1001:1001'),
      Tty: true,
      OpenStdin: true,
      StdinOnce: false,
      AttachStdin: true,
      AttachStdout: true,
      AttachStderr: true,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: workdir,
      Labels: { [LABEL_SESSION]: spec.sessionId, [LABEL_AGENT]: spec.agentId, [LABEL_BRIDGE]: spec.bridgeId },
      HostConfig: {
        NetworkMode: 'none',
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        Memory: spec.resources.memoryMb * 1024 * 1024,
        NanoCpus: Math.round(spec.resources.cpus * 1e9),
        PidsLimit: spec.resources.pids,
        Binds: binds,
      },
    });
    try {
      const proc = await this.attach(container, spec.sessionId);
      await container.start();
      await container.resize({ h: spec.rows, w: spec.cols }).catch(() => undefined);
      this.log.info(`container ${container.id.slice(0, 12)} started for session ${spec.sessionId}`);
      return proc;
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw err;
    }
  }

  /** The image, pulled once when it is missing (a clear reason when that is impossible, e.g. offline). */
  private async ensureImage(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).inspect();
      return;
    } catch {
      // Not here yet: pull it.
    }
    this.log.info(`pulling ${image}`);
    try {
      const stream = await this.docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
    } catch (err) {
      throw new RuntimeUnavailableError(`image ${image} is not in Docker and could not be pulled (${(err as Error).message.split('\n')[0]}); pull or build it, or set another image`);
    }
  }

  async adopt(ref: string, sessionId: string): Promise<SandboxProcess | undefined> {
    const container = this.docker.getContainer(ref);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await container.inspect();
    } catch {
      return undefined;
    }
    if (!info.State.Running) return undefined;
    const log = (await container.logs({ stdout: true, stderr: true, follow: false, tail: 20000 }).catch(() => Buffer.alloc(0))) as unknown as Buffer;
    const history = log.length > HISTORY_BYTES ? log.subarray(log.length - HISTORY_BYTES) : log;
    return this.attach(container, sessionId, history);
  }

  async remove(ref: string): Promise<void> {
    await this.docker
      .getContainer(ref)
      .remove({ force: true })
      .catch((e: Error & { statusCode?: number }) => {
        if (e.statusCode !== 404) throw e;
      });
  }

  async running(bridgeId: string): Promise<{ ref: string; sessionId: string }[]> {
    const list = await this.docker.listContainers({ filters: { label: [`${LABEL_BRIDGE}=${bridgeId}`] } });
    return list.map((c) => ({ ref: c.Id, sessionId: c.Labels[LABEL_SESSION] ?? '' }));
  }

  private async attach(container: Docker.Container, sessionId: string, history: Buffer = Buffer.alloc(0)): Promise<SandboxProcess> {
    const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as Duplex;
    const data = new Emitter<Buffer>(true);
    const exit = new Emitter<ExitInfo>(true);
    let done = false;
    let destroying = false;
    const finish = (info: ExitInfo) => {
      if (done) return;
      done = true;
      stream.destroy();
      if (!destroying) exit.emit(info);
    };
    stream.on('data', (chunk: Buffer) => data.emit(chunk));
    stream.on('error', () => undefined);
    // `next-exit`: the default condition answers at once for a container not started yet.
    container.wait({ condition: 'next-exit' }).then(
      (r: { StatusCode?: number }) => finish({ code: r?.StatusCode ?? null }),
      (err: Error) => finish({ code: null, reason: `container wait failed: ${err.message}` }),
    );
    stream.on('end', () => {
      // The stream also ends when the container is removed from outside; `wait` usually says so first.
      setTimeout(async () => {
        if (done) return;
        const alive = await container.inspect().then((i) => i.State.Running, () => false);
        if (!alive) finish({ code: null, reason: 'the container is gone' });
      }, 500);
    });
    return {
      ref: container.id,
      write: (d) => {
        if (!done) stream.write(d);
      },
      resize: (cols, rows) => {
        if (!done) container.resize({ h: rows, w: cols }).catch((e: Error) => this.log.debug(`resize ${sessionId}: ${e.message}`));
      },
      onData: (l) => data.on(l),
      onExit: (l) => exit.on(l),
      pause: () => stream.pause(),
      resume: () => stream.resume(),
      history: async () => history,
      destroy: async () => {
        destroying = true;
        await container.remove({ force: true }).catch((e: Error & { statusCode?: number }) => {
          if (e.statusCode !== 404) throw e;
        });
        finish({ code: null, reason: 'stopped' });
      },
      detach: () => {
        done = true;
        stream.destroy();
      },
    };
  }
}
