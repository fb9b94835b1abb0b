/**
 * The mirror worker (`dist/bridge-mirror.js`): one thread, shared by every session of the bridge,
 * that parses their output into headless terminals and answers snapshot requests (mirror.ts).
 */
import { parentPort } from 'node:worker_threads';
import { MirrorEngine } from './mirrorEngine';
import type { FromMirrorWorker, ToMirrorWorker } from './mirror';

const port = parentPort;
if (!port) throw new Error('mirrorWorker runs as a worker thread');
const engines = new Map<number, MirrorEngine>();
const send = (m: FromMirrorWorker) => port.postMessage(m);

port.on('message', (m: ToMirrorWorker) => {
  switch (m.t) {
    case 'open':
      engines.get(m.id)?.dispose();
      engines.set(
        m.id,
        new MirrorEngine(
          m.size,
          (p) => send({ t: 'progress', id: m.id, ...p }),
          (request, text) => send({ t: 'snapshot', id: m.id, request, text }),
        ),
      );
      break;
    case 'data':
      engines.get(m.id)?.write(m.bytes);
      break;
    case 'resize':
      engines.get(m.id)?.resize(m.cols, m.rows);
      break;
    case 'snapshot':
      engines.get(m.id)?.snapshot(m.request);
      break;
    case 'close':
      engines.get(m.id)?.dispose();
      engines.delete(m.id);
      break;
  }
});
