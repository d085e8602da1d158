#!/usr/bin/python3
"""Cached (downstream-only) sensitivity sweep vs a full re-run per configuration.

    /usr/bin/python3 bench/sensitivity/run_sensitivity_bench.py [--build build] [--repeat 5]
        [--modes weights,activations,both] [--models demo,resnet18] [--threads 1]

Times both sweeps, alternating, in one qs_bench_sensitivity process per model and mode,
on the demo CNN (its Fashion-MNIST slice) and on ResNet-18 (torchvision, weights=None,
exported by bench/run_runtime_bench.py's export_models into BUILD/bench; seeded
random 224x224 inputs). Prints the medians of wall time, cached/naive of them, and of
process CPU time ("cpu ratio", steadier on a shared machine); the target is <= 0.5.
What each side does (same runtime, batch, threads): see qs_bench_sensitivity.cpp.
"bound" is what an exact downstream-only sweep cannot go below: the mean over layers
of the MACs of the layer and everything downstream of it, over the model's MACs, plus
one FP32 run per configuration count (the cached reference).
Needs `ninja -C BUILD qs_bench_sensitivity`, python3-torch, python3-torchvision, python3-onnx.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from run_runtime_bench import export_models  # noqa: E402


def downstream_mac_fraction(path):
    """Mean over Conv/Gemm/MatMul layers of (MACs of the layer and its downstream) / all MACs."""
    import onnx
    from onnx import shape_inference

    g = shape_inference.infer_shapes(onnx.load(path)).graph
    dims = {vi.name: [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
            for vi in list(g.value_info) + list(g.input) + list(g.output)}
    inits = {i.name: list(i.dims) for i in g.initializer}
    macs = {}
    for i, n in enumerate(g.node):
        if n.op_type in ("Conv", "Gemm", "MatMul") and len(n.input) > 1 and n.input[1] in inits:
            w = inits[n.input[1]]
            out = 1
            for d in dims[n.output[0]]:
                out *= d
            k = 1
            for d in (w[1:] if n.op_type == "Conv" else [w[1] if n.op_type == "Gemm" else w[0]]):
                k *= d
            macs[i] = out * k
    consumers = {}
    for i, n in enumerate(g.node):
        for x in n.input:
            consumers.setdefault(x, []).append(i)
    fractions = []
    for i in macs:
        seen, stack = {i}, [i]
        while stack:
            for o in g.node[stack.pop()].output:
                for c in consumers.get(o, []):
                    if c not in seen:
                        seen.add(c)
                        stack.append(c)
        fractions.append(sum(macs[j] for j in seen if j in macs) / sum(macs.values()))
    return sum(fractions) / len(fractions)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="kernel threads (1: the 2-core machine is shared)")
    ap.add_argument("--models", default="demo,resnet18")
    ap.add_argument("--modes", default="weights", help="comma-separated: weights,activations,both")
    args = ap.parse_args()
    exe = os.path.join(args.build, "bench", "sensitivity", "qs_bench_sensitivity")
    if not os.path.exists(exe):
        sys.exit(f"{exe} not found: ninja -C {args.build} qs_bench_sensitivity")
    demo = os.path.join(ROOT, "resources", "demo")
    cases = {
        # model, data, samples, batch, bits (the default set on the demo; three widths on ResNet-18)
        "demo": (os.path.join(demo, "fashion_cnn.onnx"), os.path.join(demo, "fashion1k-images-idx3-ubyte.gz"),
                 256, 32, "2,3,4,5,6,8"),
    }
    if "resnet18" in args.models:
        resnet = export_models(os.path.join(args.build, "bench"))["resnet18"]
        cases["resnet18"] = (resnet, "random:8", 8, 8, "2,4,8")
    print(f"{'model':<10}{'mode':<12}{'layers':>7}{'configs':>8}{'samples':>8}{'cached s':>10}{'naive s':>10}{'ratio':>8}"
          f"{'bound':>8}{'cpu ratio':>10}", flush=True)
    worst = 0.0
    for name in args.models.split(","):
        model, data, limit, batch, bits = cases[name]
        for mode in args.modes.split(","):
            env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="PASSIVE")
            out = subprocess.run([exe, model, data, "--limit", str(limit), "--batch", str(batch), "--bits", bits,
                                  "--repeat", str(args.repeat), "--threads", str(args.threads), "--mode", mode],
                                 check=True, capture_output=True, text=True, env=env).stdout
            r = json.loads(out.strip().splitlines()[-1])
            worst = max(worst, r["ratio"])
            bound = downstream_mac_fraction(model) + 1 / r["configurations"]
            print(f"{name:<10}{mode:<12}{r['layers']:>7}{r['configurations']:>8}{r['samples']:>8}"
                  f"{r['cached_s']:>10.2f}{r['naive_s']:>10.2f}{r['ratio']:>8.3f}{bound:>8.3f}"
                  f"{r.get('cpu_ratio', float('nan')):>10.3f}", flush=True)
    print(f"worst cached/naive ratio {worst:.3f} (target <= 0.5)")


if __name__ == "__main__":
    main()
