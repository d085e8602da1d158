#!/usr/bin/python3
"""PTQ algorithms against round-to-nearest (RTN), measured in one run.

    /usr/bin/python3 bench/algos/run_algos_bench.py [--cli build/app/quantstudio-cli]
        [--work build/bench/algos] [--abits 8] [--models cnn,mlp] [--wbits 4,3]

Models: the demo CNN (resources/demo/fashion_cnn.onnx, evaluated on its 1000-image
slice, calibrated on its first 256 images) and a small MLP trained here with
/usr/bin/python3 torch for a few seconds (Flatten-784-256-ReLU-128-10, the last two
Gemms linear so rotation can fold). Fashion-MNIST itself is not installed on this
machine, so the MLP trains on images 0-599 of the demo slice, calibrates on 0-255
and is evaluated on the held-out 600-999.
Every algorithm runs through `quantstudio-cli quantize --json` with per-channel
symmetric weights; activations at --abits (8: per-tensor affine min-max; 32: float).
Columns: top-1 (%), mean over layers of the layer-output SQNR (dB, quantized model vs
FP32 on the evaluation data) and the model-output SQNR (dB); the RTN row of each
block is the baseline, "d" columns are differences to it.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEMO = os.path.join(ROOT, "resources", "demo")
IMAGES = os.path.join(DEMO, "fashion1k-images-idx3-ubyte.gz")
LABELS = os.path.join(DEMO, "fashion1k-labels-idx1-ubyte.gz")

# (name as printed, --algo value, bits it applies at or None for all)
ALGOS = [
    ("rtn", None, None),
    ("gptq", "gptq", None),
    ("gptq+act_order", "gptq", None),  # config file sets act_order
    ("awq", "awq", None),
    ("smoothquant", "smoothquant", None),
    ("rotation", "rotation", None),
    ("adaround", "adaround", None),
    ("spqr 1%", "spqr", None),
    ("fp4_e2m1", "fp4_e2m1", 4),
    ("fp8_e4m3", "fp8_e4m3", 8),
    ("fp8_e5m2", "fp8_e5m2", 8),
]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def write_idx(path, dims, payload, dtype_code=0x08):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", (dtype_code << 8) | len(dims)))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(payload)


def split_slice(work):
    """IDX files for the MLP: train 0-599, calib 0-255, eval 600-999."""
    (n, h, w), img = read_idx(IMAGES)
    _, lab = read_idx(LABELS)
    px = h * w
    paths = {}
    for name, lo, hi in (("train", 0, 600), ("calib", 0, 256), ("eval", 600, n)):
        ip = os.path.join(work, f"{name}-images-idx3-ubyte.gz")
        lp = os.path.join(work, f"{name}-labels-idx1-ubyte.gz")
        write_idx(ip, (hi - lo, h, w), img[lo * px:hi * px])
        write_idx(lp, (hi - lo,), lab[lo:hi])
        paths[name] = (ip, lp)
    return paths, (h, w)


def train_mlp(work, paths, hw):
    import numpy as np
    import torch

    torch.manual_seed(0)
    (n, _, _), img = read_idx(paths["train"][0])
    _, lab = read_idx(paths["train"][1])
    x = torch.tensor(np.frombuffer(img, dtype=np.uint8).reshape(n, 1, *hw).astype(np.float32) / 255.0)
    y = torch.tensor(np.frombuffer(lab, dtype=np.uint8).astype(np.int64))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 128), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    start = time.time()
    for epoch in range(60):
        perm = torch.randperm(n)
        for i in range(0, n, 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    path = os.path.join(work, "mlp.onnx")
    model.eval()
    torch.onnx.export(model, x[:1], path, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, opset_version=13)
    print(f"MLP trained for {time.time() - start:.1f} s (60 epochs on 600 images), final batch loss {loss.item():.3f}",
          file=sys.stderr)
    return path


def run(cli, model, data, labels, calib, wbits, abits, algo, config, work):
    cmd = [cli, "quantize", model, "--data", data, "--labels", labels, "--wbits", str(wbits),
           "--abits", str(abits), "--granularity", "channel", "--calib-limit", "256", "--json"]
    if calib:
        cmd += ["--calib-data", calib]
    if config:
        cfg = os.path.join(work, "config.json")
        with open(cfg, "w") as f:
            json.dump(config, f)
        cmd += ["--config", cfg]
    elif algo:
        cmd += ["--algo", algo]
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    r = json.loads(out.stdout)
    sq = [l["sqnr_db"] for l in r["layers"] if l["sqnr_db"] is not None]
    r["mean_layer_sqnr"] = sum(sq) / len(sq) if sq else float("nan")
    r["seconds"] = time.time() - t0
    return r


def config_for(name, algo, wbits, abits):
    """Explicit configs where the CLI flags cannot express the parameters."""
    if name != "gptq+act_order":
        return None
    return {"algorithms": [{"name": "gptq", "params": {"act_order": True}}]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "app", "quantstudio-cli"))
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "bench", "algos"))
    ap.add_argument("--abits", type=int, default=8)
    ap.add_argument("--models", default="cnn,mlp")
    ap.add_argument("--wbits", default="4,3", help="weight bits besides 8 (always run: RTN, SmoothQuant, rotation, FP8)")
    args = ap.parse_args()
    if not os.path.exists(args.cli):
        found = [os.path.join(d, "quantstudio-cli") for d in (os.path.join(ROOT, "build", "app"),
                                                                os.path.join(ROOT, "build"))]
        args.cli = next((p for p in found if os.path.exists(p)), args.cli)
    os.makedirs(args.work, exist_ok=True)
    models = {}
    names = args.models.split(",")
    if "cnn" in names:
        models["demo CNN"] = (os.path.join(DEMO, "fashion_cnn.onnx"), IMAGES, LABELS, None)
    if "mlp" in names:
        paths, hw = split_slice(args.work)
        models["MLP"] = (train_mlp(args.work, paths, hw), paths["eval"][0], paths["eval"][1], paths["calib"][0])

    wbits = [int(b) for b in args.wbits.split(",")]
    abits_text = "float activations" if args.abits >= 16 else f"A{args.abits} per-tensor affine min-max"
    print(f"\nPTQ algorithms vs RTN: per-channel symmetric weights, {abits_text}\n")
    header = f"{'model':9} {'W':>2} {'algorithm':16} {'top1 %':>7} {'d top1':>7} {'layer SQNR':>10} {'d dB':>6} " \
             f"{'out SQNR':>8} {'d dB':>6} {'time s':>6}"
    print(header)
    print("-" * len(header))
    for mname, (model, data, labels, calib) in models.items():
        fp32 = None
        for wb in wbits + [8]:
            base = None
            for name, algo, only in ALGOS:
                # At W8 only what targets it: FP8, and the activation-side methods.
                at8 = name in ("rtn", "smoothquant", "rotation")
                if (only is None and wb == 8 and not at8) or (only is not None and only != wb):
                    continue
                r = run(args.cli, model, data, labels, calib, wb, args.abits, algo,
                        config_for(name, algo, wb, args.abits), args.work)
                if "error" in r:
                    print(f"{mname:9} {wb:>2} {name:16} error: {r['error']}")
                    continue
                fp32 = r["fp32_top1"]
                top1 = 100 * r["top1"]
                if base is None:
                    base = r
                d1 = top1 - 100 * base["top1"]
                dl = r["mean_layer_sqnr"] - base["mean_layer_sqnr"]
                do = (r["sqnr_db"] or 0) - (base["sqnr_db"] or 0)
                print(f"{mname:9} {wb:>2} {name:16} {top1:7.2f} {d1:+7.2f} {r['mean_layer_sqnr']:10.2f} {dl:+6.2f} "
                      f"{r['sqnr_db']:8.2f} {do:+6.2f} {r['seconds']:6.1f}", flush=True)
        print(f"{mname:9}    {'fp32':16} {100 * fp32:7.2f}\n")


if __name__ == "__main__":
    main()
