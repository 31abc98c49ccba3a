// Runs a TensorFlow.js graph model with the pure-JavaScript CPU backend:
// the oracle the converter's output is compared with.
//
//   node run.js request.json
//
// request.json: {"model": "dir/model.json", "outdir": "dir",
//   "outputs": ["pha", ...] (signature keys or tensor names),
//   "state": {"r1o": "r1i", ...} (outputs fed back as inputs of the next step),
//   "steps": [{"inputs": {"src": {"shape": [1, 64, 64, 3], "dtype": "float32", "file": "x.bin"}}}]}
// Inputs are raw little-endian float32 (or int32) files. Each step k writes
// outdir/k_NAME.bin (float32) for every output, and outdir/result.json
// lists their shapes.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

function readTensor(spec) {
  const buf = fs.readFileSync(spec.file);
  const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const dtype = spec.dtype || 'float32';
  const data = dtype === 'int32' ? new Int32Array(ab) : new Float32Array(ab);
  return tf.tensor(data, spec.shape, dtype);
}

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  await tf.setBackend('cpu');
  const json = JSON.parse(fs.readFileSync(req.model, 'utf8'));
  const dir = path.dirname(req.model);
  const specs = [];
  const parts = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) parts.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const model = await tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology, weightSpecs: specs, weightData,
    format: json.format, generatedBy: json.generatedBy, convertedBy: json.convertedBy,
    signature: json.signature, userDefinedMetadata: json.userDefinedMetadata,
  }));
  const sigOut = (json.signature && json.signature.outputs) || {};
  const outNames = req.outputs.map((o) => (sigOut[o] ? sigOut[o].name : o));
  const state = {};
  const result = { backend: tf.getBackend(), version: tf.version.tfjs, steps: [] };
  for (let k = 0; k < req.steps.length; k++) {
    const feed = {};
    for (const [name, spec] of Object.entries(req.steps[k].inputs)) feed[name] = readTensor(spec);
    for (const [out, inp] of Object.entries(req.state || {})) if (state[out]) feed[inp] = state[out];
    const t0 = process.hrtime.bigint();
    const outs = await model.executeAsync(feed, outNames);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const list = Array.isArray(outs) ? outs : [outs];
    const step = { ms, outputs: {} };
    for (let i = 0; i < list.length; i++) {
      const name = req.outputs[i];
      const data = await list[i].data();
      const file = path.join(req.outdir, `${k}_${name}.bin`);
      fs.writeFileSync(file, Buffer.from(new Float32Array(data).buffer));
      step.outputs[name] = { shape: list[i].shape, file };
    }
    for (const t of Object.values(feed)) if (!list.includes(t)) t.dispose();
    for (const [out] of Object.entries(req.state || {})) {
      const i = req.outputs.indexOf(out);
      if (i >= 0) state[out] = list[i];
    }
    result.steps.push(step);
  }
  fs.writeFileSync(path.join(req.outdir, 'result.json'), JSON.stringify(result));
}

main().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
