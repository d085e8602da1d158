#!/usr/bin/python3
"""Perplexity of the demo byte-level GPT under weight-only and weight+activation PTQ.

    /usr/bin/python3 bench/lm/run_lm_quant_bench.py [--cli build/app/quantstudio-cli]
        [--work build/bench/lmquant] [--context 128] [--groups 128,32] [--schemes w4,w3,w8a8]

Model: resources/demo/byte_gpt.onnx (3 layers, d_model 128, 4 heads, context 128). Its
held-out slice resources/demo/byte_gpt_val.txt (24 577 bytes) is split here: the first
6 144 bytes (48 windows of 128) are for calibration (--calib-limit of them used), the
remaining 18 433 bytes (144 windows) for evaluation (the first --eval-limit), so no
calibration window is scored. Every cell is one
`quantstudio-cli quantize MODEL --data text:EVAL --calib-data text:CALIB --context N --json`
(non-overlapping windows, next-byte perplexity = exp(mean NLL)).

Schemes: W4A16 / W3A16 symmetric weights per group of G input channels (all linear
layers: embeddings, q/k/v, proj, MLP, LM head); W8A8 per-channel symmetric weights and
per-tensor affine min-max activations at every linear-layer input. With d_model 128, g128
is one group per output channel for every layer but fc2 (input 512), so g32 is also run.
Algorithms: RTN; GPTQ (Frantar 2022); AWQ (Lin 2023); SmoothQuant (Xiao 2022, alpha 0.5);
rotation+RTN (a Hadamard rotation inserted before every linear layer, "online");
rotation+GPTQ. "d ppl" is the difference to FP32 measured in the same run.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "resources", "demo", "byte_gpt.onnx")
VAL = os.path.join(ROOT, "resources", "demo", "byte_gpt_val.txt")
CALIB_BYTES = 6144

ROTATION = {"name": "rotation", "params": {"online": True}}
ALGOS = [
    ("RTN", []),
    ("GPTQ", [{"name": "gptq"}]),
    ("AWQ", [{"name": "awq"}]),
    ("SmoothQuant", [{"name": "smoothquant"}]),
    ("rotation+RTN", [ROTATION]),
    ("rotation+GPTQ", [ROTATION, {"name": "gptq"}]),
]


def split(work):
    with open(VAL, "rb") as f:
        data = f.read()
    paths = {}
    for name, part in (("calib", data[:CALIB_BYTES]), ("eval", data[CALIB_BYTES:])):
        paths[name] = os.path.join(work, f"{name}.txt")
        with open(paths[name], "wb") as f:
            f.write(part)
    return paths


def perplexity(r, key):
    """The CLI's perplexity fields (quantized and FP32)."""
    for k in (key, "eval_" + key):
        if k in r and r[k] is not None:
            return r[k]
    raise KeyError(f"no {key} in the quantize JSON (keys: {', '.join(sorted(r))})")


def run(cli, paths, context, wbits, abits, granularity, algos, work, calib_limit, eval_limit):
    cfg = os.path.join(work, "config.json")
    with open(cfg, "w") as f:
        json.dump({"algorithms": [dict(a, params=a.get("params", {})) for a in algos]}, f)
    cmd = [cli, "quantize", MODEL, "--data", "text:" + paths["eval"], "--calib-data", "text:" + paths["calib"],
           "--context", str(context), "--wbits", str(wbits), "--abits", str(abits), "--granularity", granularity,
           "--calib-limit", str(calib_limit), "--eval-limit", str(eval_limit), "--batch", "16", "--config", cfg,
           "--json"]
    return run_json(cmd)


def run_json(cmd):
    """A CLI command's --json output with its wall time, or {"error": its last stderr line}."""
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else f"exit {out.returncode}", "cmd": " ".join(cmd)}
    r = json.loads(out.stdout)
    r["seconds"] = time.time() - t0
    r["cmd"] = " ".join(cmd)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "app", "quantstudio-cli"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "lmquant"))
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--groups", default="128,32")
    ap.add_argument("--schemes", default="w4,w3,w8a8")
    ap.add_argument("--algos", default="RTN,GPTQ,AWQ,SmoothQuant,rotation+RTN",
                    help="any of " + ",".join(n for n, _ in ALGOS))
    ap.add_argument("--calib-limit", type=int, default=32, help="calibration windows (of 48)")
    ap.add_argument("--eval-limit", type=int, default=64, help="evaluated windows (of 144)")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    paths = split(args.work)
    groups = [int(g) for g in args.groups.split(",") if g]
    wanted = set(args.algos.split(","))
    rows = []
    for scheme in args.schemes.split(","):
        if scheme in ("w4", "w3"):
            for g in groups:
                rows.append((f"W{scheme[1]}A16 g{g}", int(scheme[1]), 16, f"group:{g}"))
        elif scheme == "w8a8":
            rows.append(("W8A8 per-channel", 8, 8, "channel"))
        elif scheme == "w4a8":
            rows.append(("W4A8 per-channel", 4, 8, "channel"))
        else:
            sys.exit(f"unknown scheme {scheme}")

    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv))
    print(f"\nDemo byte GPT (resources/demo/byte_gpt.onnx), next-byte perplexity on the first {args.eval_limit} "
          f"windows of {args.context} of {os.path.getsize(paths['eval'])} held-out bytes; calibration on "
          f"{args.calib_limit} windows of {CALIB_BYTES} other bytes\n")
    header = f"{'scheme':18} {'algorithm':14} {'ppl':>8} {'d ppl':>8} {'out SQNR dB':>11} {'MiB':>6} {'time s':>6}"
    print(header)
    print("-" * len(header))
    fp32 = None
    for label, wbits, abits, gran in rows:
        for name, algos in ALGOS:
            if name not in wanted:
                continue
            r = run(args.cli, paths, args.context, wbits, abits, gran, algos, args.work, args.calib_limit,
                    args.eval_limit)
            if "error" in r:
                print(f"{label:18} {name:14} error: {r['error']}", flush=True)
                continue
            ppl = perplexity(r, "perplexity")
            if fp32 is None:
                fp32 = perplexity(r, "fp32_perplexity")
                print(f"{'FP32':18} {'':14} {fp32:8.3f} {0:+8.3f} {'':>11} "
                      f"{r['fp32_size_bits'] / 8 / 2**20:6.2f}", flush=True)
            sq = r.get("sqnr_db")
            sq_text = f"{sq:11.2f}" if isinstance(sq, (int, float)) and math.isfinite(sq) else f"{'-':>11}"
            print(f"{label:18} {name:14} {ppl:8.3f} {ppl - fp32:+8.3f} {sq_text} "
                  f"{r['size_bits'] / 8 / 2**20:6.3f} {r['seconds']:6.1f}", flush=True)
    print("\nppl: exp(mean next-byte NLL) over non-overlapping windows; MiB: stored size with scales "
          "(all layers quantized, LayerNorm/bias in float)")


if __name__ == "__main__":
    main()
