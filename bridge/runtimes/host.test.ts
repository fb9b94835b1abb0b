import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFrame, Frame, FrameReader } from './host';

test('holder frames come out whole and in order, however the stream is cut (headers included)', () => {
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const sent: { type: Frame; payload: Buffer }[] = [];
  for (let i = 0; i < 400; i++) {
    const size = [0, 1, 4, 5, 6, 100, 4095, 70_000][Math.floor(rnd() * 8)];
    const payload = Buffer.alloc(size);
    for (let k = 0; k < size; k++) payload[k] = (i + k) & 0xff;
    sent.push({ type: rnd() < 0.8 ? Frame.Data : Frame.Resize, payload });
  }
  const stream = Buffer.concat(sent.map((f) => encodeFrame(f.type, f.payload)));
  for (const maxCut of [1, 3, 7, 5000, 65_536, 300_000]) {
    const got: { type: Frame; payload: Buffer }[] = [];
    const reader = new FrameReader((type, payload) => got.push({ type, payload: Buffer.from(payload) }));
    for (let at = 0; at < stream.length; ) {
      const n = 1 + Math.floor(rnd() * maxCut);
      reader.push(stream.subarray(at, at + n));
      at += n;
    }
    assert.equal(got.length, sent.length, `cut at most ${maxCut}`);
    for (let i = 0; i < sent.length; i++) {
      assert.equal(got[i].type, sent[i].type);
      assert.ok(got[i].payload.equals(sent[i].payload), `frame ${i}, cut at most ${maxCut}`);
    }
  }
});
