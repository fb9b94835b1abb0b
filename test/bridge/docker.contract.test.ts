import { platformContract } from '../contract/platformContract';
import { dockerFixture } from './dockerFixture';
import { removeStateDir, startBridge } from './harness';

// The platform contract, against the local bridge with the Docker runtime.
platformContract(
  'bridge (docker runtime)',
  async () => {
    const fixture = await dockerFixture();
    if (!fixture) throw new Error('Docker is not available for the contract suite (see test/docker/dockerd.ts)');
    const bridge = await startBridge(fixture.options);
    return {
      url: bridge.url,
      masterKey: bridge.masterKey,
      close: async () => {
        await bridge.stop();
        removeStateDir(bridge.stateDir);
        await fixture.release();
      },
    };
  },
  { harnesses: ['shell'], model: 'none' },
);
