#!/usr/bin/python3
"""Mixed precision vs uniform weight bits on the demo model, same calibration.

    /usr/bin/python3 bench/sensitivity/run_mixed_quality.py [--build build] [--budget 4.5] [--uniform 5]

Runs `quantstudio-cli mixed` at an average weight-bit budget (one-shot sensitivity on
the first --limit images, --verify front points evaluated for real) and `quantize`
with uniform weight bits, both with the same activation bits and calibration samples,
evaluated on the whole 1000-image slice. Prints a table; passes when the mixed
configuration has higher top-1 than uniform --uniform bits while being no larger.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "resources", "demo", "fashion_cnn.onnx")
DATA = os.path.join(ROOT, "resources", "demo", "fashion1k-images-idx3-ubyte.gz")


def cli(exe, *args):
    out = subprocess.run([exe, *args, "--json"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--budget", type=float, default=4.5, help="average weight bits of the mixed configuration")
    ap.add_argument("--uniform", type=int, default=5, help="uniform weight bits to beat")
    ap.add_argument("--abits", default="8", help="activation bits for both (32: float activations)")
    ap.add_argument("--limit", type=int, default=256, help="sensitivity and calibration samples")
    ap.add_argument("--bits", default="2,3,4,5,6,8")
    ap.add_argument("--verify", type=int, default=4)
    args = ap.parse_args()
    exe = os.path.join(args.build, "app", "quantstudio-cli")
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: ninja -C {args.build} quantstudio-cli")
    common = ["--data", DATA, "--abits", args.abits]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "mixed.json")
        mixed = cli(exe, "mixed", MODEL, *common, "--bits", args.bits, "--budget-bits", str(args.budget),
                    "--limit", str(args.limit), "--verify", str(args.verify), "--out", cfg)
        # The chosen configuration quantized by `quantize`, exactly as a user would.
        chosen = cli(exe, "quantize", MODEL, *common, "--config", cfg, "--calib-limit", str(args.limit))
    rows = [("mixed (chosen)", mixed["chosen"]["average_bits"], chosen, mixed["chosen"]["predicted"])]
    for bits in sorted({args.uniform, int(args.budget), int(args.budget) + 1}):
        r = cli(exe, "quantize", MODEL, *common, "--wbits", str(bits), "--calib-limit", str(args.limit))
        rows.append((f"uniform W{bits}", float(bits), r, None))
    fp32 = rows[0][2]["fp32_top1"]
    print(f"demo model, A{args.abits}, calibration {args.limit} images, eval {rows[0][2]['eval_samples']} images, "
          f"FP32 top-1 {fp32:.4f}")
    print(f"{'configuration':<18}{'avg wbits':>10}{'size bytes':>12}{'top-1':>8}{'SQNR dB':>9}{'predicted dB':>14}")
    for name, avg, r, pred in rows:
        p = f"{pred:.2f}" if pred is not None else "-"
        print(f"{name:<18}{avg:>10.3f}{r['size_bits'] / 8:>12.0f}{r['top1']:>8.4f}{r['sqnr_db']:>9.2f}{p:>14}")
    print("\nverified front points (predicted vs measured):")
    print(f"{'avg wbits':>10}{'size bytes':>12}{'predicted dB':>14}{'measured dB':>13}{'top-1':>8}")
    for p in mixed["front"]:
        if p["measured"] is not None:
            m = p["measured"]
            print(f"{p['average_bits']:>10.3f}{m['model_size_bits'] / 8:>12.0f}{p['predicted']:>14.2f}"
                  f"{m['sqnr_db']:>13.2f}{m['top1']:>8.4f}")
    uni = next(r for name, _, r, _ in rows if name == f"uniform W{args.uniform}")
    ok = chosen["top1"] > uni["top1"] and chosen["size_bits"] <= uni["size_bits"]
    print(f"\nmixed @ {args.budget} avg bits: top-1 {chosen['top1']:.4f} vs uniform W{args.uniform} {uni['top1']:.4f}, "
          f"size {chosen['size_bits'] / 8:.0f} vs {uni['size_bits'] / 8:.0f} bytes -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
