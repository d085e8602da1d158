#!/usr/bin/python3
"""Exported QDQ model in ONNX Runtime next to our execution of the same run.

    /usr/bin/python3 bench/run_export_bench.py [--build build] [--repeat 5] [--iters 20]
        [--batch 1,32] [--threads 1] [--wbits 8]

Quantizes the demo CNN with `quantstudio-cli quantize --db` (a temporary store), exports
the run with `quantstudio-cli export --format qdq`, then alternates qs_bench_export (our
plan of the re-derived run: oneDNN INT8 kernels, or simulated quantization with --simulated)
and bench/ort/bench_ort.js (onnxruntime-node) on the QDQ file and on the FP32 model,
each the median of ITERS runs; the table shows the median over REPEAT measurements and
the ratios ours/ORT. Needs `cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci`.
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "resources/demo/fashion_cnn.onnx")
DATA = os.path.join(ROOT, "resources/demo/fashion1k-images-idx3-ubyte.gz")


def last_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    try:
        return json.loads(out)  # a whole JSON document (quantstudio-cli --json)
    except json.JSONDecodeError:
        return json.loads(out.strip().splitlines()[-1])  # one JSON line after other output


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--wbits", default="8")
    ap.add_argument("--simulated", action="store_true", help="time simulated quantization instead of INT8")
    a = ap.parse_args()
    cli = os.path.join(a.build, "app/quantstudio-cli")
    ours = os.path.join(a.build, "bench/export/qs_bench_export")
    ort = os.path.join(ROOT, "bench/ort/bench_ort.js")
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "studio.db")
        run = last_json([cli, "quantize", MODEL, "--data", DATA, "--wbits", a.wbits, "--calib-limit", "128",
                         "--eval-limit", "64", "--db", db, "--json"] + ([] if a.simulated else ["--int8"]))["run_id"]
        qdq = os.path.join(tmp, "qdq.onnx")
        subprocess.run([cli, "export", str(run), "--format", "qdq", "--out", qdq, "--db", db, "--json"], check=True,
                       capture_output=True)
        env = dict(os.environ, QS_INPUT_DIMS="[1,28,28]", OMP_WAIT_POLICY="PASSIVE")
        print(f"run {run}: W{a.wbits}A8 per-channel, QDQ export {os.path.getsize(qdq)} bytes")
        print(f"{'batch':>5} {'thr':>3} {'ours q ms':>10} {'ORT qdq ms':>10} {'q ratio':>8} "
              f"{'ours fp ms':>10} {'ORT fp ms':>10} {'fp ratio':>8}")
        for batch in a.batch.split(","):
            for threads in a.threads.split(","):
                oq, of, rq, rf = [], [], [], []
                for _ in range(a.repeat):
                    j = last_json([ours, db, str(run), batch, threads, str(a.iters), str(a.warmup)], env)
                    oq.append(j["median_ms"])
                    of.append(j["fp32_median_ms"])
                    rq.append(last_json(["node", ort, qdq, batch, threads, str(a.iters), str(a.warmup)], env)["median_ms"])
                    rf.append(last_json(["node", ort, MODEL, batch, threads, str(a.iters), str(a.warmup)], env)["median_ms"])
                m = statistics.median
                print(f"{batch:>5} {threads:>3} {m(oq):10.3f} {m(rq):10.3f} {m(oq) / m(rq):8.2f} "
                      f"{m(of):10.3f} {m(rf):10.3f} {m(of) / m(rf):8.2f}")
        print("ratio = ours / ORT (median of medians); ours q = "
              + ("oneDNN INT8 kernels" if j.get("int8") else "simulated quantization"))


if __name__ == "__main__":
    main()
