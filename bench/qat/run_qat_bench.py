#!/usr/bin/python3
"""Quantization-aware training on the demo CNN at W4A4 (weights per channel): FP32,
the best post-training quantization we have, and QAT top-1 on held-out Fashion-MNIST
(the test set; QAT trains on the training set), QAT's time per step, and the CPU's ISA.

Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
Usage: run_qat_bench.py --cli build/app/quantstudio-cli [--steps 1500] [--eval-limit 10000]
The target (issue #25): QAT within 1 point of FP32 where the best PTQ is far.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = os.path.join(HERE, "..", "..", "resources", "demo", "fashion_cnn.onnx")
DATA = "/usr/share/datasets/fashion-mnist"

# Post-training candidates at W4A4 per channel: weight range, activation calibrator, algorithms.
PTQ = [
    ("minmax", "minmax", ""),
    ("mse", "percentile:99.99", ""),
    ("mse", "mse", ""),
    ("output-mse", "mse", ""),
    ("mse", "mse", "bias_correction"),
    ("mse", "mse", "cle,bias_correction"),
    ("mse", "mse", "adaround"),
]


def run(cmd):
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit("failed: %s\n%s" % (" ".join(cmd), p.stderr.strip()[-2000:]))
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--eval-limit", type=int, default=10000)
    ap.add_argument("--lr", default="3e-4")
    ap.add_argument("--scale-lr", default="1e-3")
    a = ap.parse_args()
    train = os.path.join(DATA, "train-images-idx3-ubyte.gz")
    test = os.path.join(DATA, "t10k-images-idx3-ubyte.gz")
    if not os.path.exists(train):
        sys.exit("bench qat: %s is missing (apt-get install dataset-fashion-mnist)" % train)
    common = ["--wbits", "4", "--abits", "4", "--granularity", "channel"]

    rows = []
    fp32 = None
    for wrange, calib, algo in PTQ:
        cmd = [a.cli, "quantize", MODEL, "--data", test, "--eval-limit", str(a.eval_limit), "--calib-data", train,
               "--calib-limit", "512", "--wrange", wrange, "--calib", calib, "--json"] + common
        if algo:
            cmd += ["--algo", algo]
        t0 = time.time()
        j = run(cmd)
        fp32 = j["fp32_top1"]
        name = "W4A4 %s weights, %s activations%s" % (wrange, calib, (" + " + algo) if algo else "")
        rows.append((name, j["top1"], time.time() - t0))
        print("  PTQ %-60s top-1 %.4f  (%.0f s)" % (name, j["top1"], time.time() - t0), flush=True)
    best = max(rows, key=lambda r: r[1])

    cmd = [a.cli, "qat", MODEL, "--data", train, "--eval-data", test, "--eval-limit", str(a.eval_limit),
           "--steps", str(a.steps), "--batch", str(a.batch), "--lr", a.lr, "--scale-lr", a.scale_lr,
           "--warmup", str(max(1, a.steps // 15)), "--eval-every", "0", "--json"] + common
    t0 = time.time()
    q = run(cmd)
    wall = time.time() - t0
    print("\nCPU: %s" % q["cpu_isa"])
    print("held-out: Fashion-MNIST test set, first %d images; QAT trains on the 60000 training images" % a.eval_limit)
    print("%-64s %8s %10s" % ("", "top-1", "vs FP32"))
    print("%-64s %8.4f %10s" % ("FP32", fp32, ""))
    print("%-64s %8.4f %+10.4f" % ("best PTQ: " + best[0], best[1], best[1] - fp32))
    print("%-64s %8.4f %+10.4f" % ("QAT W4A4 per channel, %d steps of %d (LSQ, KD T=2)" % (a.steps, a.batch),
                                   q["final_top1"], q["final_top1"] - fp32))
    print("QAT: %.1f ms per step (batch %d, forward + backward + teacher), %.0f s wall including evaluation"
          % (q["seconds_per_step"] * 1000, a.batch, wall))
    met = q["final_top1"] >= fp32 - 0.01
    print("target (QAT within 1 point of FP32): %s" % ("met" if met else "NOT met"))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
