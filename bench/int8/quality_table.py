#!/usr/bin/python3
"""Top-1 of the demo CNN on its bundled 1000-image slice, quantized every way:

    /usr/bin/python3 bench/int8/quality_table.py [--build build] [--int8] [--calib-limit 256]

calibrators (minmax, ema, percentile:99.99, mse, entropy) x weight granularity
(tensor, channel) x {W8A8, W6A8, W4A8}, plus W4A8 per-channel MSE with bias
correction; each cell is one `quantstudio-cli quantize ... --json` run (simulated
quantization, or real INT8 with --int8). Prints a Markdown table of top-1 and the
drop against FP32 in points, then checks the two targets.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "resources", "demo")
CALIBS = ["minmax", "ema", "percentile:99.99", "mse", "entropy"]
GRANS = ["tensor", "channel"]
BITS = [8, 6, 4]


def run(cli, wbits, gran, calib, extra, args):
    cmd = [cli, "quantize", os.path.join(DEMO, "fashion_cnn.onnx"), "--data",
           os.path.join(DEMO, "fashion1k-images-idx3-ubyte.gz"), "--wbits", str(wbits), "--abits", "8",
           "--granularity", gran, "--calib", calib, "--calib-limit", str(args.calib_limit), "--json"] + extra
    if args.int8:
        cmd.append("--int8")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--int8", action="store_true")
    ap.add_argument("--calib-limit", type=int, default=256)
    args = ap.parse_args()
    cli = os.path.join(args.build, "app", "quantstudio-cli")
    if not os.path.exists(cli):
        sys.exit(f"{cli} not found: ninja -C {args.build} quantstudio-cli")

    fp32 = None
    cells = {}
    for wbits in BITS:
        for gran in GRANS:
            for calib in CALIBS:
                r = run(cli, wbits, gran, calib, [], args)
                fp32 = r["fp32_top1"]
                cells[(wbits, gran, calib)] = r["top1"]
    bc = run(cli, 4, "channel", "mse", ["--bias-correction"], args)["top1"]

    mode = "real INT8 (oneDNN)" if args.int8 else "simulated quantization"
    print(f"Demo CNN, 1000-image slice, FP32 top-1 {fp32 * 100:.1f}%; {mode}, A8 affine per tensor, "
          f"{args.calib_limit} calibration images. Cells: top-1 % (drop in points).\n")
    print("| weights | granularity | " + " | ".join(CALIBS) + " |")
    print("|---|---|" + "---|" * len(CALIBS))
    for wbits in BITS:
        for gran in GRANS:
            row = [f"{cells[(wbits, gran, c)] * 100:.1f} ({(fp32 - cells[(wbits, gran, c)]) * 100:+.1f})"
                   for c in CALIBS]
            print(f"| W{wbits}A8 | {gran} | " + " | ".join(row) + " |")
    print(f"\nW4A8 channel mse + bias correction: {bc * 100:.1f}% (drop {(fp32 - bc) * 100:+.1f} points)")
    d8 = (fp32 - cells[(8, "channel", "minmax")]) * 100
    d4 = (fp32 - bc) * 100
    print(f"target W8A8 per-channel minmax drop <= 0.3: {d8:+.1f} -> {'met' if d8 <= 0.3 else 'MISSED'}")
    print(f"target W4A8 per-channel MSE + bias correction drop <= 2: {d4:+.1f} -> {'met' if d4 <= 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
