#!/usr/bin/python3
"""INT8 against our FP32 and ONNX Runtime FP32 on ResNet-18, in the same run.

    /usr/bin/python3 bench/int8/run_int8_bench.py [--build build] [--repeat 5] [--threads 1,2]

Exports torchvision resnet18 (weights=None) with bench/run_runtime_bench.py's
export_models() into BUILD/bench (not committed). For each thread count, REPEAT
times: qs_bench_int8 (our FP32 and INT8 timed alternately in one process, W8A8
per-channel, min-max calibrated on random inputs) then bench/ort/bench_ort.js
(onnxruntime-node, FP32). The table shows medians over the repeats and the ratios.
Needs `ninja -C BUILD qs_bench_int8` and `cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from run_runtime_bench import export_models  # noqa: E402


def last_json(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", default="1,2")
    args = ap.parse_args()

    ours = os.path.join(args.build, "bench", "int8", "qs_bench_int8")
    if not os.path.exists(ours):
        sys.exit(f"{ours} not found: ninja -C {args.build} qs_bench_int8")
    ort_js = os.path.join(ROOT, "bench", "ort", "bench_ort.js")
    if not os.path.isdir(os.path.join(ROOT, "bench", "ort", "node_modules", "onnxruntime-node")):
        sys.exit("onnxruntime-node missing: cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci")
    model = export_models(os.path.join(args.build, "bench"))["resnet18"]

    print(f"ResNet-18, batch {args.batch}; medians over {args.repeat} repeats of {args.iters} runs each")
    print(f"{'thr':>4}{'FP32 ms':>10}{'INT8 ms':>10}{'ORT ms':>10}{'FP32/INT8':>11}{'ORT/INT8':>10}{'agree':>7}",
          flush=True)
    worst = None
    for threads in [int(t) for t in args.threads.split(",")]:
        env = dict(os.environ, QS_INPUT_DIMS="[3, 224, 224]", OMP_NUM_THREADS=str(threads))
        f, q, o, agree = [], [], [], []
        for _ in range(args.repeat):
            r = last_json([ours, model, "--batch", str(args.batch), "--threads", str(threads), "--iters",
                           str(args.iters), "--rounds", "2", "--warmup", "2"], env)
            f.append(r["fp32_median_ms"])
            q.append(r["int8_median_ms"])
            agree.append(r["top1_agreement"])
            o.append(last_json(["node", ort_js, model, str(args.batch), str(threads), str(args.iters), "2"],
                               env)["median_ms"])
        mf, mq, mo = statistics.median(f), statistics.median(q), statistics.median(o)
        ratio = mf / mq
        worst = ratio if worst is None else min(worst, ratio)
        print(f"{threads:>4}{mf:>10.1f}{mq:>10.1f}{mo:>10.1f}{ratio:>11.2f}{mo / mq:>10.2f}{min(agree):>7.3f}",
              flush=True)
    print(f"lowest FP32/INT8 {worst:.2f} (target >= 2.5)")


if __name__ == "__main__":
    main()
