#!/usr/bin/python3
"""QAT on the demo byte-level GPT at W4 (groups of 32) weights, 8-bit activations and a
4-bit KV cache (the K and V operands of attention, --kv-bits): next-byte perplexity of
FP32, round-to-nearest, GPTQ (post-training) and QAT (quantstudio-cli qat: distillation
per token, LSQ scales of the activations and of the K and V operands, STE weights) on
held-out bytes of resources/demo/byte_gpt_val.txt; calibration and training use the
first 6144 bytes, evaluation the rest. QAT's perplexity is given as trained (its learned
scales) and as its checkpoint quantizes (its learned activation and operand grids, which
the checkpoint's config holds as ranges). Then the per-operand sensitivity (`sensitivity --attention`: each Q, K, V, P
point alone at --kv-bits, KL of the next-byte distribution). Prints the commands and
QAT's time per step.
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
    ap.add_argument("--kv-bits", default="4", help="K and V operand bits (32: float)")
    ap.add_argument("--kv-granularity", default="tensor", help="K and V granularity: tensor, head, channel, token")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    with open(VAL, "rb") as f:
        data = f.read()
    train, held = os.path.join(args.work, "train.txt"), os.path.join(args.work, "eval.txt")
    with open(train, "wb") as f:
        f.write(data[:TRAIN_BYTES])
    with open(held, "wb") as f:
        f.write(data[TRAIN_BYTES:])
    bits = ["--wbits", "4", "--abits", "8", "--granularity", f"group:{args.group}", "--kv-bits", args.kv_bits,
            "--attn-granularity", f"k={args.kv_granularity},v={args.kv_granularity}"]
    ctx = ["--context", str(args.context)]
    print("command:", " ".join([sys.executable] + sys.argv))
    print(f"byte GPT, W4 g{args.group} weights + A8 (per tensor) + KV{args.kv_bits} ({args.kv_granularity}), "
          f"next-byte perplexity on {args.eval_limit} "
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
    rows.append(("QAT (as trained)", r["final_perplexity"], " ".join(cmd)))
    rows.append(("QAT (checkpoint)", r["checkpoints"][-1]["perplexity"], ""))
    if float(args.attention_weight) > 0:
        cmd = cmd[:-3] + ["--attention-weight", args.attention_weight, "--out", os.path.join(args.work, "qat-attn"),
                          "--json"]
        ra = cli_json(cmd)
        rows.append(("QAT+attn KL (as trained)", ra["final_perplexity"], " ".join(cmd)))
        rows.append(("QAT+attn KL (checkpoint)", ra["checkpoints"][-1]["perplexity"], ""))
    for name, ppl, c in rows:
        print(f"{name:25} perplexity {ppl:8.4f}  ({ppl - rows[0][1]:+.4f})")
    moved = {k: v["latest"] / v["initial"] - 1 for k, v in r["scales"].items() if ":" in k and v["initial"]}
    if moved:
        print(f"learned K/V operand scales: {len(moved)}, moved "
              f"{min(moved.values()) * 100:+.1f}% .. {max(moved.values()) * 100:+.1f}% from calibration")

    # Per-operand sensitivity: each attention point alone at the KV width.
    kvb = args.kv_bits if args.kv_bits not in ("16", "32") else "4"
    scmd = [args.cli, "sensitivity", MODEL, "--data", "text:" + held] + ctx + [
        "--attention", "--attn-granularity", args.kv_granularity, "--bits", kvb, "--limit", str(args.eval_limit),
        "--batch", str(args.batch), "--json"]
    sens = cli_json(scmd)
    points = [l for l in sens["layers"] if ":" in l["name"]]
    print(f"\nper-operand sensitivity at {kvb} bits ({args.kv_granularity}), KL of the next-byte distribution "
          f"on {args.eval_limit} windows, most sensitive first:")
    points.sort(key=lambda l: -(l["by_bits"][kvb]["kl"] or 0))
    for l in points:
        b = l["by_bits"][kvb]
        print(f"  {l['name']:28} KL {b['kl']:.3e}  SQNR {b['sqnr_db']:6.2f} dB")
    print(f"\nQAT: {args.steps} steps of {args.batch} windows, {r['seconds_per_step'] * 1000:.0f} ms per step, "
          f"{seconds:.0f} s in all; CPU {r['cpu_isa']}")
    for name, _, c in rows:
        if c:
            print(f"{name}: {c}")
    print(f"sensitivity: {' '.join(scmd)}")


if __name__ == "__main__":
    main()
