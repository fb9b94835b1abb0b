import { platformContract } from '../contract/platformContract';
import { removeStateDir, startBridge } from './harness';

// The platform contract, against the local bridge with the host runtime.
platformContract(
  'bridge (host runtime)',
  async () => {
    const bridge = await startBridge({ runtime: 'host' });
    return {
      url: bridge.url,
      masterKey: bridge.masterKey,
      close: async () => {
        await bridge.stop();
        removeStateDir(bridge.stateDir);
      },
    };
  },
  { harnesses: ['shell'], model: 'none' },
);
