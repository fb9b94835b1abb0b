/**
 * Sandbox images, built by the bridge from `harness-containers/` with dockerode.
 *
 * `base/` is built first (build arg `BASE`: the base image, default the official node image), then the
 * harness's folder on top of it (build arg `BASE_IMAGE`, plus the harness's pins from
 * `versions.json`). Each image is tagged `sandbox-agents/<name>:<12 hex>`, a hash of its build context
 * (each file's path, mode and content) and its build args. The base's tag is one of the harness's
 * args, so a changed base changes every tag. An image whose tag is present is never built again.
 *
 * The context of a folder is every file in it except Markdown, TypeScript and dot files: our own
 * code (init, the API-harness servers) is bundled into dist/sandbox/ and mounted into the sandbox at
 * run time, so changing it never rebuilds an image.
 */
import Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import * as tar from 'tar-stream';
import { dockerOptions } from './runtimes/docker';

export const DEFAULT_BASE_IMAGE = 'node:20-bookworm-slim';
export const IMAGE_REPOSITORY_PREFIX = 'sandbox-agents/';
/** The folder every harness image is built on. */
export const BASE_NAME = 'base';
/** Labels every image we build carries. */
export const LABEL_IMAGE = 'sandbox-agents.image';
export const LABEL_CONTEXT = 'sandbox-agents.context';
/** Bytes of build log kept per build (the oldest lines go first). */
export const LOG_LIMIT_BYTES = 2 * 1024 * 1024;
/** Lines of the log an ImageBuildError ends with. */
export const ERROR_TAIL_LINES = 15;
/** Bump when the way tags are computed changes. */
const HASH_FORMAT = 'sandbox-agents-image-context-v1';
const NAME = /^[a-z0-9][a-z0-9._-]*$/;

export interface ContextFile {
  /** Relative to the image's folder, `/`-separated. */
  path: string;
  /** 0o755 or 0o644: only the executable bit counts (checkouts differ in the rest). */
  mode: number;
  content: Buffer;
}

export interface BuildProgress {
  /** The harness `ensure` was asked for. */
  harness: string;
  /** The image being built: the harness's own, or the base on the way to it. */
  image: string;
  /** The builder's current step, e.g. `Step 3/7 : RUN npm install -g …`; undefined before the first. */
  step: string | undefined;
  /** One line of the build's output. */
  line: string;
}

export interface EnsureOptions {
  signal?: AbortSignal;
  onProgress?: (progress: BuildProgress) => void;
}

export interface ImageBuilderOptions {
  /** A dockerode client; otherwise one for `dockerHost`. */
  docker?: Docker;
  /** `unix://…`, `tcp://…`; undefined: DOCKER_HOST, else the default socket. */
  dockerHost?: string;
  /** Build arg `BASE` of the base image. Default: DEFAULT_BASE_IMAGE. */
  baseImage?: string;
  /** The builds' network (`host` on machines where only the host reaches npm); default: Docker's. */
  networkMode?: string;
  /** Where the image folders and versions.json are. Default: `harness-containers` next to dist/. */
  harnessRoot?: string;
  /** Extra labels on every image built. */
  labels?: Record<string, string>;
}

/** A build that failed: the message names the image and ends with the last lines of its log. */
export class ImageBuildError extends Error {
  override name = 'ImageBuildError';
  constructor(
    readonly image: string,
    readonly harness: string,
    readonly reason: string,
    readonly logTail: string[],
  ) {
    super(`Building the ${harness} image ${image} failed: ${reason}${logTail.length ? `\nLast lines of the build log:\n${logTail.join('\n')}` : ''}`);
  }
}

export class AbortError extends Error {
  override name = 'AbortError';
  readonly code = 'ABORT_ERR';
  constructor(message = 'The image build was cancelled') {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------
// Contexts, hashes, tags

function excluded(name: string): boolean {
  return name.startsWith('.') || name === 'node_modules' || /\.(md|ts|map)$/i.test(name);
}

/** The files of an image's build context, sorted by path. */
export function contextFiles(dir: string): ContextFile[] {
  const out: ContextFile[] = [];
  const walk = (abs: string, rel: string) => {
    for (const entry of readdirSync(abs, { withFileTypes: true })) {
      if (excluded(entry.name)) continue;
      const childAbs = path.join(abs, entry.name);
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(childAbs, childRel);
      else if (entry.isFile()) {
        const mode = statSync(childAbs).mode & 0o111 ? 0o755 : 0o644;
        out.push({ path: childRel, mode, content: readFileSync(childAbs) });
      }
      // Symlinks, sockets…: not part of a context.
    }
  };
  walk(dir, '');
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** sha256 (hex) over every file's path, mode and content, and the build args. */
export function contextHash(files: readonly ContextFile[], buildArgs: Record<string, string>): string {
  const h = createHash('sha256');
  h.update(`${HASH_FORMAT}\n`);
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(`file ${JSON.stringify(f.path)} ${f.mode.toString(8)} ${f.content.length}\n`);
    h.update(f.content);
    h.update('\n');
  }
  const args = Object.keys(buildArgs)
    .sort()
    .map((k) => [k, buildArgs[k]]);
  h.update(`args ${JSON.stringify(args)}\n`);
  return h.digest('hex');
}

export function imageRef(name: string, hash: string): string {
  return `${IMAGE_REPOSITORY_PREFIX}${name}:${hash.slice(0, 12)}`;
}

/** The context as a tar archive (fixed owner and mtime, so the same files give the same bytes). */
export function packContext(files: readonly ContextFile[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  for (const f of files) {
    pack.entry({ name: f.path, mode: f.mode, size: f.content.length, mtime: new Date(0), uid: 0, gid: 0, type: 'file' }, f.content);
  }
  pack.finalize();
  return done;
}

/** `versions.json`: `{ "<image>": { "<BUILD_ARG>": "<pinned version>" } }`. */
export function readVersions(root: string): Record<string, Record<string, string>> {
  let text: string;
  try {
    text = readFileSync(path.join(root, 'versions.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
  const parsed: unknown = JSON.parse(text);
  const out: Record<string, Record<string, string>> = {};
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error(`${root}/versions.json: not an object`);
  for (const [image, args] of Object.entries(parsed)) {
    if (!args || typeof args !== 'object' || Array.isArray(args)) throw new Error(`${root}/versions.json: "${image}" is not an object`);
    out[image] = {};
    for (const [k, v] of Object.entries(args)) {
      if (typeof v !== 'string') throw new Error(`${root}/versions.json: ${image}.${k} is not a string`);
      out[image][k] = v;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The build's output: a stream of JSON messages, and lines of text in them

/** Splits the daemon's JSON message stream (newline-separated or back to back, cut anywhere) into values. */
export class JsonMessageSplitter {
  private readonly decoder = new StringDecoder('utf8');
  private buf = '';
  private pos = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  push(chunk: Buffer | string): unknown[] {
    this.buf += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    return this.scan(false);
  }

  end(): unknown[] {
    this.buf += this.decoder.end();
    return this.scan(true);
  }

  private scan(final: boolean): unknown[] {
    const out: unknown[] = [];
    while (this.pos < this.buf.length) {
      const c = this.buf[this.pos];
      if (this.depth === 0) {
        if (c === '{') {
          this.buf = this.buf.slice(this.pos);
          this.pos = 1;
          this.depth = 1;
        } else if (/\s/.test(c)) {
          this.pos++;
        } else {
          // Text outside any object (not the daemon's format, but keep it): up to the end of the line.
          const nl = this.buf.indexOf('\n', this.pos);
          if (nl < 0 && !final) break;
          const end = nl < 0 ? this.buf.length : nl + 1;
          out.push({ stream: this.buf.slice(this.pos, end) });
          this.buf = this.buf.slice(end);
          this.pos = 0;
        }
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        this.depth--;
        if (this.depth === 0) {
          const text = this.buf.slice(0, this.pos + 1);
          this.buf = this.buf.slice(this.pos + 1);
          this.pos = 0;
          try {
            out.push(JSON.parse(text));
          } catch {
            out.push({ stream: `${text}\n` });
          }
          continue;
        }
      }
      this.pos++;
    }
    if (final && this.buf.trim()) {
      out.push({ stream: this.buf });
      this.buf = '';
      this.pos = 0;
      this.depth = 0;
      this.inString = false;
      this.escaped = false;
    }
    if (this.depth === 0) {
      this.buf = this.buf.slice(this.pos);
      this.pos = 0;
    }
    return out;
  }
}

/** Text cut anywhere → whole lines (LF, CRLF or a lone CR end a line; empty lines are dropped). */
export class LineSplitter {
  private rest = '';

  push(text: string): string[] {
    this.rest += text;
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < this.rest.length; i++) {
      const c = this.rest[i];
      if (c !== '\n' && c !== '\r') continue;
      if (c === '\r' && i === this.rest.length - 1) break; // maybe CRLF cut in two: wait
      out.push(this.rest.slice(start, i));
      if (c === '\r' && this.rest[i + 1] === '\n') i++;
      start = i + 1;
    }
    this.rest = this.rest.slice(start);
    return out.filter((l) => l.trim() !== '');
  }

  end(): string[] {
    const last = this.rest.replace(/\r$/, '');
    this.rest = '';
    return last.trim() ? [last] : [];
  }
}

/** Lines of a log, at most `limit` bytes (the oldest go first). */
export class BoundedLog {
  private lines: string[] = [];
  private bytes = 0;
  private dropped = 0;

  constructor(private readonly limit = LOG_LIMIT_BYTES) {}

  add(line: string): void {
    this.lines.push(line);
    this.bytes += Buffer.byteLength(line) + 1;
    while (this.bytes > this.limit && this.lines.length > 1) {
      this.bytes -= Buffer.byteLength(this.lines.shift()!) + 1;
      this.dropped++;
    }
  }

  tail(n: number): string[] {
    return this.lines.slice(-n);
  }

  all(): readonly string[] {
    return this.lines;
  }

  text(): string {
    const head = this.dropped ? `[${this.dropped} earlier lines dropped]\n` : '';
    return head + this.lines.map((l) => `${l}\n`).join('');
  }
}

/** One message of the build stream, as what it means for the log. */
export interface BuildMessage {
  /** Output text (may hold several lines, or part of one). */
  text?: string;
  /** A status line (pulls); `transient` when it is only a progress-bar update. */
  status?: { line: string; transient: boolean };
  error?: string;
  imageId?: string;
}

export function readBuildMessage(value: unknown): BuildMessage {
  if (!value || typeof value !== 'object') return { text: `${JSON.stringify(value)}\n` };
  const m = value as Record<string, unknown>;
  const out: BuildMessage = {};
  if (typeof m.stream === 'string') out.text = m.stream;
  if (typeof m.status === 'string') {
    const id = typeof m.id === 'string' ? `${m.id}: ` : '';
    const progress = typeof m.progress === 'string' ? ` ${m.progress}` : '';
    const detail = m.progressDetail as { current?: unknown } | undefined;
    out.status = { line: `${id}${m.status}${progress}`, transient: typeof detail?.current === 'number' };
  }
  const detail = m.errorDetail as { message?: unknown } | undefined;
  if (typeof m.error === 'string' && m.error) out.error = m.error;
  else if (typeof detail?.message === 'string' && detail.message) out.error = detail.message;
  const aux = m.aux as { ID?: unknown } | undefined;
  if (typeof aux?.ID === 'string') out.imageId = aux.ID;
  return out;
}

/** A line without terminal escapes (the daemon colours a step's stderr). */
export function plainLine(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g, '').trimEnd();
}

export function isStepLine(line: string): boolean {
  return /^Step \d+\/\d+ : /.test(line);
}

/** The images under a harness root: its folders with a Dockerfile. */
export function imageNames(root: string): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && NAME.test(e.name) && statSync(path.join(root, e.name, 'Dockerfile'), { throwIfNoEntry: false })?.isFile())
    .map((e) => e.name)
    .sort();
}

/** Every file of a harness root the bridge needs at run time (to ship): contexts, READMEs, pins. */
export function harnessRootFiles(root: string): string[] {
  const out: string[] = [];
  for (const top of ['README.md', 'versions.json']) if (statSync(path.join(root, top), { throwIfNoEntry: false })?.isFile()) out.push(top);
  for (const name of imageNames(root)) {
    for (const f of contextFiles(path.join(root, name))) out.push(`${name}/${f.path}`);
    if (statSync(path.join(root, name, 'README.md'), { throwIfNoEntry: false })?.isFile()) out.push(`${name}/README.md`);
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------------------
// The builder

interface Target {
  name: string;
  dir: string;
  ref: string;
  hash: string;
  files: ContextFile[];
  buildArgs: Record<string, string>;
}

interface Build {
  target: Target;
  controller: AbortController;
  waiters: number;
  log: BoundedLog;
  step: string | undefined;
  listeners: Set<(step: string | undefined, line: string) => void>;
  done: Promise<void>;
}

export class ImageBuilder {
  readonly baseImage: string;
  readonly harnessRoot: string;
  private readonly docker: Docker;
  private readonly builds = new Map<string, Build>();
  private readonly logs = new Map<string, string>();

  constructor(private readonly opts: ImageBuilderOptions = {}) {
    this.docker = opts.docker ?? new Docker(dockerOptions(opts.dockerHost));
    this.baseImage = opts.baseImage || DEFAULT_BASE_IMAGE;
    // The bridge runs from dist/bridge.js; in tests from bridge/images.ts: both one level down.
    this.harnessRoot = opts.harnessRoot ?? path.join(__dirname, '..', 'harness-containers');
  }

  /** The image names this builder can build (folders with a Dockerfile). */
  names(): string[] {
    return imageNames(this.harnessRoot);
  }

  /** The tag `ensure(harness)` returns, from the files as they are now; builds nothing. */
  imageRef(harness: string): string {
    return this.plan(harness).image.ref;
  }

  /** The log of the builds the last `ensure(harness)` ran or waited for ('' when none). */
  log(harness: string): string {
    return this.logs.get(harness) ?? '';
  }

  /** The image for `harness` (its tag), built first (with the base) when it is not in Docker. */
  async ensure(harness: string, opts: EnsureOptions = {}): Promise<string> {
    throwIfAborted(opts.signal);
    const plan = this.plan(harness);
    if (await this.exists(plan.image.ref)) return plan.image.ref;
    throwIfAborted(opts.signal);
    const log = new BoundedLog();
    try {
      if (plan.base) await this.ensureTarget(plan.base, harness, opts, log);
      await this.ensureTarget(plan.image, harness, opts, log);
    } finally {
      if (log.all().length) this.logs.set(harness, log.text());
    }
    return plan.image.ref;
  }

  private plan(harness: string): { base?: Target; image: Target } {
    if (!NAME.test(harness)) throw new Error(`"${harness}" is not an image name`);
    const versions = readVersions(this.harnessRoot);
    const base = this.target(BASE_NAME, { BASE: this.baseImage, ...versions[BASE_NAME] });
    if (harness === BASE_NAME) return { image: base };
    return { base, image: this.target(harness, { ...versions[harness], BASE_IMAGE: base.ref }) };
  }

  private target(name: string, buildArgs: Record<string, string>): Target {
    const dir = path.join(this.harnessRoot, name);
    if (!statSync(path.join(dir, 'Dockerfile'), { throwIfNoEntry: false })?.isFile()) {
      throw new Error(`There is no image "${name}": ${dir}/Dockerfile is missing`);
    }
    const files = contextFiles(dir);
    const hash = contextHash(files, buildArgs);
    return { name, dir, files, hash, buildArgs, ref: imageRef(name, hash) };
  }

  private async exists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return false;
      throw e;
    }
  }

  private async ensureTarget(target: Target, harness: string, opts: EnsureOptions, log: BoundedLog): Promise<void> {
    if (!this.builds.has(target.ref) && (await this.exists(target.ref))) return;
    throwIfAborted(opts.signal);
    await this.join(target, harness, opts, log);
  }

  /** Waits for the build of `target`, starting it unless one is under way (then it is shared). */
  private join(target: Target, harness: string, opts: EnsureOptions, log: BoundedLog): Promise<void> {
    let build = this.builds.get(target.ref);
    if (!build) {
      build = this.start(target);
      this.builds.set(target.ref, build);
    }
    const b = build;
    const progress = (step: string | undefined, line: string) => {
      try {
        opts.onProgress?.({ harness, image: target.ref, step, line });
      } catch {
        // A listener's failure is not the build's.
      }
    };
    const listener = (step: string | undefined, line: string) => {
      log.add(line);
      progress(step, line);
    };
    // Joining a build under way: what it printed so far goes into this log too.
    for (const line of b.log.all()) log.add(line);
    const last = b.log.all().at(-1);
    if (last !== undefined) progress(b.step, last);
    b.listeners.add(listener);
    b.waiters++;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = () => {
        settled = true;
        b.listeners.delete(listener);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        if (settled) return;
        finish();
        reject(new AbortError());
        if (--b.waiters === 0) {
          // Nobody waits for it any more: stop it, and let a new ensure start afresh.
          if (this.builds.get(target.ref) === b) this.builds.delete(target.ref);
          b.controller.abort();
        }
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      b.done.then(
        () => {
          if (settled) return;
          finish();
          resolve();
        },
        (err: unknown) => {
          if (settled) return;
          finish();
          reject(err);
        },
      );
    });
  }

  private start(target: Target): Build {
    const build: Build = {
      target,
      controller: new AbortController(),
      waiters: 0,
      log: new BoundedLog(),
      step: undefined,
      listeners: new Set(),
      done: Promise.resolve(),
    };
    const emit = (line: string) => {
      if (isStepLine(line)) build.step = line;
      build.log.add(line);
      for (const l of [...build.listeners]) l(build.step, line);
    };
    build.done = this.run(target, build.controller.signal, emit, () => build.log.tail(ERROR_TAIL_LINES)).finally(() => {
      if (this.builds.get(target.ref) === build) this.builds.delete(target.ref);
    });
    build.done.catch(() => undefined); // observed by the waiters; never an unhandled rejection
    return build;
  }

  private async run(target: Target, signal: AbortSignal, emit: (line: string) => void, tail: () => string[]): Promise<void> {
    const { name, ref } = target;
    const fail = (reason: string) => new ImageBuildError(ref, name, reason, tail());
    const args = Object.entries(target.buildArgs)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    emit(`Building ${ref} from ${target.dir}${args ? ` (${args})` : ''}`);

    const context = await packContext(target.files);
    if (signal.aborted) throw new AbortError();
    let response: NodeJS.ReadableStream;
    try {
      response = await this.docker.buildImage(Readable.from(context), {
        t: ref,
        buildargs: target.buildArgs,
        labels: { ...this.opts.labels, [LABEL_IMAGE]: name, [LABEL_CONTEXT]: target.hash },
        networkmode: this.opts.networkMode,
        rm: true,
        forcerm: true,
        abortSignal: signal,
      });
    } catch (e) {
      if (signal.aborted) throw new AbortError();
      const reason = firstLine((e as Error).message);
      emit(`error: ${reason}`);
      throw fail(reason);
    }

    const emitPlain = (line: string) => {
      const plain = plainLine(line);
      if (plain.trim()) emit(plain);
    };
    const error = await new Promise<string | undefined>((resolve, reject) => {
      const splitter = new JsonMessageSplitter();
      const lines = new LineSplitter();
      let buildError: string | undefined;
      const handle = (values: unknown[]) => {
        for (const v of values) {
          const m = readBuildMessage(v);
          if (m.text !== undefined) for (const line of lines.push(m.text)) emitPlain(line);
          if (m.status && !m.status.transient) emit(m.status.line);
          if (m.error) {
            for (const line of lines.end()) emitPlain(line);
            buildError ??= m.error.trim();
            emit(`error: ${m.error.trim()}`);
          }
        }
      };
      const stream = response as NodeJS.ReadableStream & { destroy?: (e?: Error) => void };
      const onAbort = () => stream.destroy?.();
      signal.addEventListener('abort', onAbort, { once: true });
      let ended = false;
      const end = (err?: Error) => {
        if (ended) return;
        ended = true;
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return reject(new AbortError());
        if (err) return reject(fail(`the connection to Docker broke: ${err.message}`));
        handle(splitter.end());
        for (const line of lines.end()) emitPlain(line);
        resolve(buildError);
      };
      stream.on('data', (chunk: Buffer) => handle(splitter.push(chunk)));
      stream.on('end', () => end());
      stream.on('error', (e: Error) => end(e));
      stream.on('close', () => end(signal.aborted ? undefined : new Error('closed before the end')));
    });
    if (error) throw fail(error);
    if (!(await this.exists(ref))) {
      emit('error: the build ended without an image');
      throw fail('the build ended without an image');
    }
  }
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError();
}
