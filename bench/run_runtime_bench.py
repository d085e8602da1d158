#!/usr/bin/python3
"""QuantStudio runtime vs ONNX Runtime on the same files, in the same run.

    /usr/bin/python3 bench/run_runtime_bench.py [--build build-rt] [--repeat 5] [--seconds 0.5] [--wait passive]

Exports ResNet-18 and MobileNetV2 (torchvision, weights=None, seed 0, opset 13,
dynamic batch) into BUILD/bench (not committed), then times the demo CNN, MobileNetV2
and ResNet-18 at batch 1 and 32 with 1 and 2 threads: qs_bench_runtime (ours) and
bench/ort/bench_ort.js (onnxruntime-node) alternate, each reporting the median of
as many runs as fill about SECONDS (from one calibration run of ours, the same count
for both, 5 to 500); the table shows the median over REPEAT such measurements and ours/ORT,
then the same for process CPU time per run (all threads), which on a saturated machine
tracks the work done while wall time tracks the CPU share each process obtained.

--wait passive (the default) makes idle pool threads block instead of spin on both
sides: OMP_WAIT_POLICY=PASSIVE for ours (libgomp reads it at start-up only) and
session.intra_op.allow_spinning=0 for ONNX Runtime. On a machine shared with other
work, spinning threads lose their time slices and every parallel region then waits
for a scheduler round (measured: demo CNN batch 32, 2 threads, 140 ms spinning vs
2.3 ms passive). --wait default leaves both libraries at their own defaults.
Needs python3-torch, python3-torchvision (Debian, /usr/bin/python3) and
`cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def export_models(out_dir):
    import torch
    import torchvision

    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for name, ctor in (("mobilenet_v2", torchvision.models.mobilenet_v2), ("resnet18", torchvision.models.resnet18)):
        path = os.path.join(out_dir, name + ".onnx")
        paths[name] = path
        if os.path.exists(path):
            continue
        torch.manual_seed(0)
        model = ctor(weights=None).eval()
        x = torch.randn(1, 3, 224, 224)
        torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True)
    return paths


def measure(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["median_ms"], r["cpu_ms"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rt"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5, help="timed runs per measurement fill about this long")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--models", default="demo,mobilenet_v2,resnet18")
    ap.add_argument("--wait", choices=("passive", "default"), default="passive")
    args = ap.parse_args()

    ours = os.path.join(args.build, "bench", "runtime", "qs_bench_runtime")
    if not os.path.exists(ours):
        sys.exit(f"{ours} not found: ninja -C {args.build} qs_bench_runtime")
    ort_js = os.path.join(ROOT, "bench", "ort", "bench_ort.js")
    if not os.path.isdir(os.path.join(ROOT, "bench", "ort", "node_modules", "onnxruntime-node")):
        sys.exit("onnxruntime-node missing: cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci")
    models = {"demo": (os.path.join(ROOT, "resources", "demo", "fashion_cnn.onnx"), [1, 28, 28])}
    exported = export_models(os.path.join(args.build, "bench"))
    models["mobilenet_v2"] = (exported["mobilenet_v2"], [3, 224, 224])
    models["resnet18"] = (exported["resnet18"], [3, 224, 224])

    wait_env = {"OMP_WAIT_POLICY": "PASSIVE", "QS_ORT_ALLOW_SPINNING": "0"} if args.wait == "passive" else {}
    base_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "QS_ORT_ALLOW_SPINNING")}
    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv), flush=True)
    print(f"wait policy: {args.wait}; load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus",
          flush=True)
    rows = []
    print(f"{'model':<14}{'batch':>6}{'thr':>5}{'ours ms':>11}{'ORT ms':>11}{'ours/ORT':>10}"
          f"{'ours cpu':>11}{'ORT cpu':>11}{'cpu ratio':>10}", flush=True)
    for name in args.models.split(","):
        path, dims = models[name]
        for batch in (1, 32):
            for threads in (1, 2):
                env = dict(base_env, **wait_env, QS_INPUT_DIMS=json.dumps(dims), OMP_NUM_THREADS=str(threads))
                once, _ = measure([ours, path, "--batch", str(batch), "--threads", str(threads), "--iters", "3",
                                   "--warmup", "1"], env)
                iters = max(5, min(500, int(args.seconds * 1000 / max(once, 1e-3))))
                a, b = [], []
                for _ in range(args.repeat):
                    a.append(measure([ours, path, "--batch", str(batch), "--threads", str(threads),
                                      "--iters", str(iters), "--warmup", str(args.warmup)], env))
                    b.append(measure(["node", ort_js, path, str(batch), str(threads), str(iters), str(args.warmup)],
                                     env))
                ma, mb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
                ca, cb = statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)
                rows.append((name, batch, threads, ma, mb, ma / mb))
                print(f"{name:<14}{batch:>6}{threads:>5}{ma:>11.3f}{mb:>11.3f}{ma / mb:>10.2f}"
                      f"{ca:>11.3f}{cb:>11.3f}{ca / cb:>10.2f}", flush=True)
    worst = max(r[5] for r in rows)
    print(f"worst ratio {worst:.2f} (target <= 1.10); load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
