// The harness images in the test Docker engine, for every test that runs a sandbox image:
//
// - testImageBuilder(host): the bridge's ImageBuilder with `BASE` = the local node base (no registry is
//   reachable for `node:20-bookworm-slim`) and builds on the host network (npm and apt need it here).
// - ensureHarnessImages(host): every image built once per daemon (so once per test run: the run shares
//   one daemon), and kept as one `docker save` tarball under ~/.cache/sandbox-agents/images keyed by
//   the images' tags, so the next run on the same machine loads it instead of downloading ~1 GB again.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { ImageBuilder, type BuildProgress, type ImageBuilderOptions } from '../../bridge/images';
import { docker, dockerOk, ensureNodeBaseImage, imageCacheDir, log, nodeBaseImageKey, withCacheLock } from './dockerd';

/** Every image the product builds, base first. */
export const IMAGE_NAMES = ['base', 'shell', 'claude-code', 'codex', 'opencode', 'claude-agent-sdk'] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];
/** Label on every image the tests build (the bridge's own labels come on top). */
export const TEST_LABEL = 'sandbox-agents.test';
const TARBALL_PREFIX = 'harness-images-';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const secs = (sinceMs: number) => `${((Date.now() - sinceMs) / 1000).toFixed(1)} s`;

export async function testImageBuilder(host: string, opts: Partial<ImageBuilderOptions> = {}): Promise<ImageBuilder> {
  const baseImage = await ensureNodeBaseImage(host);
  return new ImageBuilder({ dockerHost: host, baseImage, networkMode: 'host', labels: { [TEST_LABEL]: '1' }, ...opts });
}

async function present(host: string, ref: string): Promise<boolean> {
  return (await docker(host, ['image', 'inspect', '--format', '{{.Id}}', ref])).code === 0;
}

export interface HarnessImages {
  builder: ImageBuilder;
  refs: Record<ImageName, string>;
  /** What this call did: nothing (all present), loaded the saved tarball, or built (some) images. */
  how: 'present' | 'loaded' | 'built';
}

const ensuring = new Map<string, Promise<HarnessImages>>();

/** Every harness image (current tags) in the daemon at `host`. */
export function ensureHarnessImages(host: string, onProgress?: (p: BuildProgress) => void): Promise<HarnessImages> {
  let p = ensuring.get(host);
  if (!p) {
    p = ensureOnce(host, onProgress).finally(() => ensuring.delete(host));
    ensuring.set(host, p);
  }
  return p;
}

async function ensureOnce(host: string, onProgress?: (p: BuildProgress) => void): Promise<HarnessImages> {
  const builder = await testImageBuilder(host);
  const refs = Object.fromEntries(IMAGE_NAMES.map((n) => [n, builder.imageRef(n)])) as Record<ImageName, string>;
  const missing = async () => {
    const out: ImageName[] = [];
    for (const n of IMAGE_NAMES) if (!(await present(host, refs[n]))) out.push(n);
    return out;
  };
  if ((await missing()).length === 0) return { builder, refs, how: 'present' };

  return withCacheLock(`harness-images-${sha(host).slice(0, 12)}`, `another process building the harness images in ${host}`, async () => {
    let todo = await missing();
    if (todo.length === 0) return { builder, refs, how: 'present' };
    const t0 = Date.now();
    // The tags name the base image, not what is in it: the saved images are only good for this node base.
    const key = sha(JSON.stringify({ refs: IMAGE_NAMES.map((n) => refs[n]), nodeBase: nodeBaseImageKey() })).slice(0, 12);
    const saved = join(imageCacheDir(), `${TARBALL_PREFIX}${key}.tar`);
    if (fs.existsSync(saved)) {
      const r = await docker(host, ['load', '-q', '-i', saved], { timeoutMs: 15 * 60_000 });
      todo = await missing();
      if (r.code === 0 && todo.length === 0) {
        log(`harness images loaded from ${saved} in ${secs(t0)}`);
        return { builder, refs, how: 'loaded' };
      }
      log(`the saved harness images ${saved} did not load (${r.stderr.trim() || `still missing: ${todo.join(', ')}`}); building`);
      fs.rmSync(saved, { force: true });
    }

    for (const name of todo) {
      const t1 = Date.now();
      let lastStep: string | undefined;
      log(`building ${refs[name]} (npm and apt on the host network)`);
      await builder.ensure(name, {
        onProgress: (p) => {
          if (p.step && p.step !== lastStep) {
            lastStep = p.step;
            log(`  ${p.image.replace('sandbox-agents/', '')}: ${p.step.slice(0, 140)}`);
          }
          onProgress?.(p);
        },
      });
      log(`built ${refs[name]} in ${secs(t1)}`);
    }

    const t2 = Date.now();
    fs.mkdirSync(imageCacheDir(), { recursive: true });
    const partial = `${saved}.${process.pid}.partial`;
    try {
      await dockerOk(host, ['save', '-o', partial, ...IMAGE_NAMES.map((n) => refs[n])], { timeoutMs: 15 * 60_000 });
      fs.renameSync(partial, saved);
      for (const n of fs.readdirSync(imageCacheDir())) {
        if (n.startsWith(TARBALL_PREFIX) && join(imageCacheDir(), n) !== saved && !n.endsWith('.partial')) fs.rmSync(join(imageCacheDir(), n), { force: true });
      }
      log(`saved the harness images to ${saved} (${(fs.statSync(saved).size / 1e6).toFixed(0)} MB) in ${secs(t2)}`);
    } catch (e) {
      fs.rmSync(partial, { force: true });
      log(`could not save the harness images (${(e as Error).message}); the next run builds them again`);
    }
    return { builder, refs, how: 'built' };
  });
}
