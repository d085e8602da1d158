#!/usr/bin/python3
"""Attention operands and a 4-bit KV cache on the demo byte-level GPT (issue #25, item 1).

    /usr/bin/python3 bench/lm/run_lm_attention_bench.py [--cli build/app/quantstudio-cli]
        [--work build/bench/lmattn] [--calib-limit 32] [--eval-limit 64] [--sweep-limit 32]

Model and data as bench/lm/run_lm_quant_bench.py: resources/demo/byte_gpt.onnx (3 layers,
4 heads of 32, context 128), its held-out text split into calibration (first 6 144 bytes)
and evaluation (the rest), so no calibration window is scored.

1. Perplexity (`quantstudio-cli quantize --json`): W4 g32 weights (RTN) with 8-bit
   per-tensor activations at every linear layer, then the attention operands on top:
   K and V at 4 bits per tensor, K per channel and V per token (KIVI), the same with Q and
   P at 8 bits, and K/V at 2 bits (KIVI).
2. Per role (all three blocks at once), the perplexity change at 2, 3, 4 and 8 bits of
   that role alone on FP32 weights (the attention operands' own perplexity cost).
3. The one-at-a-time sweep (`quantstudio-cli sensitivity --attention --kivi`): every
   point's output SQNR and KL against FP32 at each bit width, on held-out windows.
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run_lm_quant_bench import MODEL, ROOT, perplexity, run_json, split  # noqa: E402

SCHEMES = [
    ("W4g32 A8", []),
    ("W4g32 A8 + KV4 tensor", ["--kv-bits", "4"]),
    ("W4g32 A8 + KV4 KIVI", ["--kv-bits", "4", "--kivi"]),
    ("W4g32 A8 + KV4 KIVI + Q8 P8", ["--attn-bits", "8", "--kv-bits", "4", "--kivi"]),
    ("W4g32 A8 + KV2 KIVI", ["--kv-bits", "2", "--kivi"]),
]


def quantize(cli, paths, extra, work, args, weights=("--wbits", "4", "--granularity", "group:32", "--abits", "8")):
    cmd = [cli, "quantize", MODEL, "--data", "text:" + paths["eval"], "--calib-data", "text:" + paths["calib"],
           "--context", "128", *weights, "--calib-limit", str(args.calib_limit), "--eval-limit",
           str(args.eval_limit), "--batch", "16", "--json", *extra]
    return run_json(cmd)


def config_for_role(work, role, bits):
    """A config quantizing one role of every attention block (weights and activations float)."""
    spec = {"bits": bits}
    if role == "k":
        spec["granularity"] = "channel"
    elif role == "v":
        spec["granularity"] = "token"
    elif role == "p":
        spec["symmetric"] = False
    path = os.path.join(work, f"role_{role}{bits}.json")
    with open(path, "w") as f:
        json.dump({"default": {"weight": {"bits": 32}, "activation": {"bits": 32}}, "attention": {role: spec}}, f)
    return path


def fmt(x, width=8, prec=3, sign=False):
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return f"{'-':>{width}}"
    return f"{x:+{width}.{prec}f}" if sign else f"{x:{width}.{prec}f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "app", "quantstudio-cli"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "lmattn"))
    ap.add_argument("--calib-limit", type=int, default=32, help="calibration windows (of 48)")
    ap.add_argument("--eval-limit", type=int, default=64, help="evaluated windows (of 144)")
    ap.add_argument("--sweep-limit", type=int, default=32, help="windows of the sensitivity sweep")
    ap.add_argument("--bits", default="2,3,4,8")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    paths = split(args.work)
    bits = [int(b) for b in args.bits.split(",")]
    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv))
    print(f"\nDemo byte GPT, next-byte perplexity on the first {args.eval_limit} held-out windows of 128; "
          f"calibration on {args.calib_limit} other windows\n")

    print(f"{'scheme':32} {'ppl':>8} {'d ppl':>8} {'out SQNR':>9} {'time s':>6}")
    fp32 = None
    kivi = None
    for label, extra in SCHEMES:
        r = quantize(args.cli, paths, extra, args.work, args)
        if "error" in r:
            print(f"{label:32} error: {r['error']}", flush=True)
            continue
        ppl = perplexity(r, "perplexity")
        if fp32 is None:
            fp32 = perplexity(r, "fp32_perplexity")
            print(f"{'FP32':32} {fp32:8.3f} {0:+8.3f}", flush=True)
        print(f"{label:32} {ppl:8.3f} {ppl - fp32:+8.3f} {fmt(r.get('sqnr_db'), 9, 2)} {r['seconds']:6.1f}",
              flush=True)
        if label == "W4g32 A8 + KV4 KIVI":
            kivi = r
    if kivi:
        print("\nW4g32 A8 + KV4 KIVI: the attention operands' rows (SQNR of the operand in the quantized model)")
        for o in kivi.get("attention_operands", []):
            print(f"  {o['name']:24} {o['role']} {o['bits']}-bit {o['granularity']:8} {fmt(o['sqnr_db'], 7, 2)} dB")

    print(f"\nOne role at a time (all blocks; FP32 weights and activations): perplexity change")
    print(f"{'role':24}" + "".join(f" {str(b) + '-bit':>9}" for b in bits))
    names = {"q": "Q (per tensor)", "k": "K (per channel)", "v": "V (per token)", "p": "P (per tensor, affine)"}
    for role in "qkvp":
        cells = []
        for b in bits:
            r = quantize(args.cli, paths, ["--config", config_for_role(args.work, role, b)], args.work, args,
                         weights=())
            cells.append(fmt(perplexity(r, "perplexity") - perplexity(r, "fp32_perplexity"), 9, 4, True)
                         if "error" not in r else f"{'error':>9}")
        print(f"{names[role]:24}" + "".join(f" {c}" for c in cells), flush=True)

    cmd = [args.cli, "sensitivity", MODEL, "--data", "text:" + paths["eval"], "--context", "128", "--bits",
           ",".join(map(str, bits)), "--attention", "--kivi", "--limit", str(args.sweep_limit), "--batch", "16",
           "--json"]
    j = run_json(cmd)
    if "error" in j:
        sys.exit("sensitivity failed: " + j["error"])
    print(f"\nSensitivity sweep, one point at a time ({args.sweep_limit} windows, {j['seconds']:.1f} s): "
          f"model output SQNR dB / KL nats vs FP32")
    print(f"{'point':24} {'op':9}" + "".join(f" {str(b) + '-bit':>17}" for b in bits))
    for l in j["layers"]:
        if not l["op"].startswith("MatMul:"):
            continue
        cells = []
        for b in bits:
            m = l["by_bits"].get(str(b))
            cells.append(f"{fmt(m['sqnr_db'], 6, 1)} / {m['kl']:8.2e}" if m else f"{'-':>17}")
        print(f"{l['name']:24} {l['op']:9}" + "".join(f" {c:>17}" for c in cells))


if __name__ == "__main__":
    main()
