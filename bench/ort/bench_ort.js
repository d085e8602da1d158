// node bench_ort.js MODEL BATCH THREADS ITERS WARMUP: ONNX Runtime (CPU) timed like
// qs_bench_runtime: one session, warm-up runs, median of ITERS runs in ms and process CPU
// time per run (one JSON line).
const ort = require('onnxruntime-node');

function seeded(seed) {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 4294967296 * 2 - 1; };
}

async function main() {
  const [model, batch, threads, iters, warmup] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threads), interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // QS_ORT_ALLOW_SPINNING=0: pool threads block instead of spinning while idle (the
    // counterpart of OMP_WAIT_POLICY=PASSIVE on our side).
    ...(process.env.QS_ORT_ALLOW_SPINNING !== undefined
      ? { extra: { session: { intra_op: { allow_spinning: process.env.QS_ORT_ALLOW_SPINNING } } } } : {}),
  });
  // QS_INPUT_SPEC (as qs_bench_runtime): [{name, type, shape, lo, hi} or {..., value}] for every
  // input; else QS_INPUT_DIMS, the first input's [C, H, W] after the batch, in [-1, 1].
  const rnd = seeded(42);
  const spec = process.env.QS_INPUT_SPEC ? JSON.parse(process.env.QS_INPUT_SPEC)
    : [{ name: session.inputNames[0], type: 'float32', shape: [Number(batch), ...JSON.parse(process.env.QS_INPUT_DIMS)] }];
  const feeds = {};
  for (const s of spec) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    if (s.type === 'int64') {
      feeds[s.name] = new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(s.value)), s.shape);
      continue;
    }
    const data = new Float32Array(n);
    const lo = s.lo ?? -1, hi = s.hi ?? 1;
    for (let i = 0; i < n; ++i) data[i] = s.value !== undefined ? s.value : lo + (hi - lo) * (rnd() + 1) / 2;
    feeds[s.name] = new ort.Tensor('float32', data, s.shape);
  }
  for (let i = 0; i < Number(warmup); ++i) await session.run(feeds);
  const ms = [];
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < Number(iters); ++i) {
    const t = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const cpu = process.cpuUsage(cpu0); // microseconds, all threads of the process
  const cpuMs = (cpu.user + cpu.system) / 1e3 / Number(iters);
  ms.sort((a, b) => a - b);
  console.log(JSON.stringify({ median_ms: ms[Math.floor(ms.length / 2)], min_ms: ms[0], cpu_ms: cpuMs }));
}
main().catch((e) => { console.error(String(e)); process.exit(1); });
