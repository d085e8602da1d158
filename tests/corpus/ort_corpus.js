// node ort_corpus.js MODEL SPEC.json OUT_DIR [REPEATS]: runs MODEL in ONNX Runtime (CPU, one thread) on
// COUNT samples, one at a time. SPEC: {"count": N, "inputs": [{"name", "type": "float32"|"int64",
// "dims": [...one sample's shape as the model takes it...], "file": raw little-endian values of
// all N samples}]}. Writes OUT_DIR/output_K.f32 (output K of every sample, float32) and prints
// {"outputs": [{"name", "dims"}], "version"}; with REPEATS, also "ms": the median time of one
// sample's run over REPEATS runs after one warm-up (bench/corpus). The reference of tests/corpus (onnxruntime-node is
// resolved through NODE_PATH: bench/ort/node_modules).
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

async function main() {
  const [model, specPath, outDir, repeatsText] = process.argv.slice(2);
  const spec = JSON.parse(fs.readFileSync(specPath, 'utf8'));
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const feeds = spec.inputs.map((i) => {
    const buf = fs.readFileSync(i.file);
    const per = i.dims.reduce((a, b) => a * b, 1);
    const Arr = i.type === 'int64' ? BigInt64Array : Float32Array;
    const all = new Arr(buf.buffer, buf.byteOffset, buf.byteLength / Arr.BYTES_PER_ELEMENT);
    if (all.length !== per * spec.count) throw new Error(`${i.file}: ${all.length} values, expected ${per * spec.count}`);
    return { ...i, all, per };
  });
  const chunks = session.outputNames.map(() => []);
  let dims = [];
  for (let s = 0; s < spec.count; ++s) {
    const feed = {};
    for (const f of feeds)
      feed[f.name] = new ort.Tensor(f.type, f.all.slice(s * f.per, (s + 1) * f.per), f.dims);
    const result = await session.run(feed);
    dims = session.outputNames.map((n) => result[n].dims);
    session.outputNames.forEach((n, k) => {
      const d = Float32Array.from(result[n].data, Number);
      chunks[k].push(Buffer.from(d.buffer, d.byteOffset, d.byteLength));
    });
  }
  let ms;
  if (repeatsText) {
    const feed = {};
    for (const f of feeds) feed[f.name] = new ort.Tensor(f.type, f.all.slice(0, f.per), f.dims);
    await session.run(feed);
    const times = [];
    for (let r = 0; r < Number(repeatsText); ++r) {
      const t = process.hrtime.bigint();
      await session.run(feed);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    times.sort((a, b) => a - b);
    ms = times[times.length >> 1];
  }
  session.outputNames.forEach((n, k) => fs.writeFileSync(path.join(outDir, `output_${k}.f32`), Buffer.concat(chunks[k])));
  console.log(JSON.stringify({ outputs: session.outputNames.map((n, k) => ({ name: n, dims: dims[k] })),
    version: require('onnxruntime-node/package.json').version, ms }));
}
main().catch((e) => { console.error(String(e && e.message ? e.message : e)); process.exit(1); });
