/** The Docker runtime for bridge tests: the shared test dockerd with the base image as the shell image. */
import { BASE_IMAGE, dockerOk, dockerPrerequisites, ensureBaseImage, requireAllTiers, sharedTestDockerd } from '../docker/dockerd';
import type { RuntimeFixture } from './ttySuite';

export async function dockerFixture(): Promise<RuntimeFixture | undefined> {
  const missing = dockerPrerequisites();
  if (missing) {
    if (requireAllTiers()) throw new Error(missing);
    return undefined;
  }
  const daemon = await sharedTestDockerd();
  try {
    const image = await ensureBaseImage(daemon.host);
    return {
      options: { runtime: 'docker', dockerHost: daemon.host, image: image ?? BASE_IMAGE },
      killFromOutside: async (ref) => {
        await dockerOk(daemon.host, ['kill', ref]);
      },
      release: () => daemon.release(),
    };
  } catch (err) {
    await daemon.release();
    throw err;
  }
}
