#!/usr/bin/python3
"""QAT on the demo byte-level GPT at W4 (groups of 32) weights and 8-bit activations:
next-byte perplexity of FP32, round-to-nearest, GPTQ (post-training) and QAT
(quantstudio-cli qat: distillation per token, LSQ activation scales, STE weights) on
held-out bytes of resources/demo/byte_gpt_val.txt; calibration and training use the
first 6144 bytes, evaluation the rest. Prints the commands and QAT's time per step.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "resources", "demo", "byte_gpt.onnx")
VAL = os.path.join(ROOT, "resources", "demo", "byte_gpt_val.txt")
TRAIN_BYTES = 6144


def cli_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr.strip()}")
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "app", "quantstudio-cli"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "gptqat"))
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--group", type=int, default=32)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", default="1e-4")
    ap.add_argument("--eval-limit", type=int, default=64, help="held-out windows")
    ap.add_argument("--attention-weight", default="1", help="a second QAT run with the attention-map KL (0: none)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    with open(VAL, "rb") as f:
        data = f.read()
    train, held = os.path.join(args.work, "train.txt"), os.path.join(args.work, "eval.txt")
    with open(train, "wb") as f:
        f.write(data[:TRAIN_BYTES])
    with open(held, "wb") as f:
        f.write(data[TRAIN_BYTES:])
    bits = ["--wbits", "4", "--abits", "8", "--granularity", f"group:{args.group}"]
    ctx = ["--context", str(args.context)]
    print("command:", " ".join([sys.executable] + sys.argv))
    print(f"byte GPT, W4 g{args.group} weights + A8 (per tensor), next-byte perplexity on {args.eval_limit} "
          f"held-out windows of {args.context} bytes; calibration/training on the first {TRAIN_BYTES} bytes\n")
    rows = []
    for name, algos in (("RTN", []), ("GPTQ", [{"name": "gptq", "params": {}}])):
        cfg = os.path.join(args.work, f"{name}.json")
        with open(cfg, "w") as f:
            json.dump({"algorithms": algos}, f)
        cmd = [args.cli, "quantize", MODEL, "--data", "text:" + held, "--calib-data", "text:" + train] + ctx + bits + [
            "--eval-limit", str(args.eval_limit), "--calib-limit", "48", "--config", cfg, "--json"]
        r = cli_json(cmd)
        if not rows:
            rows.append(("FP32", r["fp32_perplexity"], ""))
        rows.append((name, r["perplexity"], " ".join(cmd)))
    cmd = [args.cli, "qat", MODEL, "--data", "text:" + train, "--eval-data", "text:" + held] + ctx + bits + [
        "--eval-limit", str(args.eval_limit), "--steps", str(args.steps), "--batch", str(args.batch), "--lr", args.lr,
        "--eval-every", "0", "--out", os.path.join(args.work, "qat"), "--json"]
    t0 = time.time()
    r = cli_json(cmd)
    seconds = time.time() - t0
    rows.append(("QAT", r["checkpoints"][-1]["perplexity"], " ".join(cmd)))
    if float(args.attention_weight) > 0:
        cmd = cmd[:-3] + ["--attention-weight", args.attention_weight, "--out", os.path.join(args.work, "qat-attn"),
                          "--json"]
        rows.append(("QAT+attention KL", cli_json(cmd)["checkpoints"][-1]["perplexity"], " ".join(cmd)))
    for name, ppl, c in rows:
        print(f"{name:17} perplexity {ppl:8.4f}  ({ppl - rows[0][1]:+.4f})")
    print(f"\nQAT: {args.steps} steps of {args.batch} windows, {r['seconds_per_step'] * 1000:.0f} ms per step, "
          f"{seconds:.0f} s in all; CPU {r['cpu_isa']}")
    for name, _, c in rows:
        if c:
            print(f"{name}: {c}")


if __name__ == "__main__":
    main()
