// node ort_outputs.js MODEL OUTDIR NAME:TYPE:DIMS:FILE...: runs MODEL once in ONNX Runtime
// (CPU) on the given inputs (raw little-endian FILE, TYPE float32 or int64, DIMS like
// 2x3, empty for a scalar) and writes every output's raw bytes to OUTDIR/<output>.bin;
// prints {"output": [dims], ...}. onnxruntime-node comes through NODE_PATH (bench/ort).
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, outDir, ...specs] = process.argv.slice(2);
  const feeds = {};
  for (const spec of specs) {
    const [name, type, dimsText, file] = spec.split(':');
    const dims = dimsText === '' ? [] : dimsText.split('x').map(Number);
    const buf = fs.readFileSync(file);
    const data = type === 'int64' ? new BigInt64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength))
                                  : new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    feeds[name] = new ort.Tensor(type, data, dims);
  }
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const result = await session.run(feeds);
  const shapes = {};
  for (const name of session.outputNames) {
    const d = result[name].data;
    fs.writeFileSync(path.join(outDir, name + '.bin'), Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    shapes[name] = result[name].dims;
  }
  console.log(JSON.stringify(shapes));
}
main().catch((e) => { console.error(String(e && e.message ? e.message : e)); process.exit(1); });
