// node bench_lm_ort.js MODEL TEXT BATCH CONTEXT THREADS ITERS WARMUP: ONNX Runtime (CPU)
// timed like qs_bench_lm on the same int64 [BATCH, CONTEXT] windows of TEXT (window k =
// bytes [k*CONTEXT, k*CONTEXT + CONTEXT), targets shifted by one byte); one JSON line.
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, '..', 'ort', 'node_modules', 'onnxruntime-node'));

async function main() {
  const [model, text, batchS, contextS, threads, iters, warmup] = process.argv.slice(2);
  const batch = Number(batchS), context = Number(contextS);
  const bytes = fs.readFileSync(text);
  if (Math.floor((bytes.length - 1) / context) < batch) throw new Error(`${text}: too short`);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    ...(process.env.QS_ORT_ALLOW_SPINNING !== undefined
      ? { extra: { session: { intra_op: { allow_spinning: process.env.QS_ORT_ALLOW_SPINNING } } } } : {}),
  });
  const n = batch * context;
  const ids = new BigInt64Array(n);
  for (let i = 0; i < n; ++i) ids[i] = BigInt(bytes[i]);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('int64', ids, [batch, context]) };
  const first = await session.run(feeds);
  const logits = first[session.outputNames[0]].data;
  const vocab = logits.length / n;
  let nll = 0;
  for (let i = 0; i < n; ++i) {
    let m = -Infinity;
    for (let v = 0; v < vocab; ++v) m = Math.max(m, logits[i * vocab + v]);
    let e = 0;
    for (let v = 0; v < vocab; ++v) e += Math.exp(logits[i * vocab + v] - m);
    nll += m + Math.log(e) - logits[i * vocab + bytes[i + 1]];
  }
  for (let i = 1; i < Number(warmup); ++i) await session.run(feeds);
  const ms = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < Number(iters); ++i) {
    const t = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const cpu = process.cpuUsage(cpu0);
  ms.sort((a, b) => a - b);
  const median = ms[Math.floor(ms.length / 2)];
  console.log(JSON.stringify({ median_ms: median, cpu_ms: (cpu.user + cpu.system) / 1e3 / Number(iters),
    tokens_per_second: n * 1000 / median, mean_nll: nll / n }));
}
main().catch((e) => { console.error(String(e)); process.exit(1); });
