// node ort_eval.js MODEL INPUTS.f32 DIMS_JSON COUNT BATCH LOGITS.f32 [OPT]: runs MODEL in
// ONNX Runtime (CPU) on COUNT float32 samples of shape DIMS (after the batch) read
// from INPUTS.f32 and writes the first output's float32 values to LOGITS.f32. OPT is the
// graph optimization level: 'all' (default: QDQ fused into integer kernels) or 'disabled'
// (QuantizeLinear/DequantizeLinear executed as written, in float).
// onnxruntime-node is resolved through NODE_PATH (bench/ort/node_modules).
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputs, dimsJson, countText, batchText, out, opt] = process.argv.slice(2);
  const dims = JSON.parse(dimsJson);
  const count = Number(countText), batch = Number(batchText);
  const per = dims.reduce((a, b) => a * b, 1);
  const buf = fs.readFileSync(inputs);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (all.length !== count * per) throw new Error(`${inputs}: ${all.length} floats, expected ${count * per}`);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: opt || 'all' });
  const chunks = [];
  for (let start = 0; start < count; start += batch) {
    const n = Math.min(batch, count - start);
    const data = all.slice(start * per, (start + n) * per);
    const result = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, [n, ...dims]) });
    const d = result[session.outputNames[0]].data;
    chunks.push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
  }
  fs.writeFileSync(out, Buffer.concat(chunks));
  console.log(JSON.stringify({ version: require('onnxruntime-node/package.json').version, samples: count }));
}
main().catch((e) => { console.error(String(e && e.message ? e.message : e)); process.exit(1); });
