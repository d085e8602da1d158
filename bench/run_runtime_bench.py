#!/usr/bin/python3
"""QuantStudio runtime vs ONNX Runtime on the same files, in the same run.

    /usr/bin/python3 bench/run_runtime_bench.py [--build build-rt] [--repeat 5] [--seconds 0.5] [--wait passive]
        [--models demo,mobilenet_v2,resnet18,corpus]

Exports ResNet-18 and MobileNetV2 (torchvision, weights=None, seed 0, opset 13,
dynamic batch) into BUILD/bench (not committed), then times the demo CNN, MobileNetV2,
ResNet-18 and the corpus models (tests/corpus/models.tsv, "corpus" for all of them; ~/.cache/
quantstudio/corpus, inputs uniform in their generator's range, a model whose file fixes
the batch at 1 gets a copy in BUILD/bench with a symbolic one for batch 32)
at batch 1 and 32 with 1 and 2 threads: qs_bench_runtime (ours) and
bench/ort/bench_ort.js (onnxruntime-node) alternate, each reporting the median of
as many runs as fill about SECONDS (from one calibration run of ours, the same count
for both, 5 to 500); the table shows the median over REPEAT such measurements and ours/ORT,
then the same for process CPU time per run (all threads), which on a saturated machine
tracks the work done while wall time tracks the CPU share each process obtained.
"passes diff" is the largest difference between our outputs with the graph optimizer and
without it (qs_bench_runtime --compare), relative to each output's largest magnitude, at
batch 1 and 32 on one thread.

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
sys.path.insert(0, os.path.join(ROOT, "bench", "corpus"))
from run_corpus_bench import corpus_dir, cpu_isa, manifest  # noqa: E402


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


def gen_range(gen):
    """(lo, hi) or the constant of a models.tsv generator."""
    kind, *a = gen.split(":")
    if kind == "image":
        return {"lo": float(a[0]), "hi": float(a[1])}
    if kind == "smooth":
        return {"lo": -float(a[0]), "hi": float(a[0])}
    if kind == "chirp":
        return {"lo": -0.55, "hi": 0.55}
    return {"value": 0.0 if kind == "zeros" else float(a[0])}


def batch_free_copy(path, out_dir):
    """A copy of the model whose inputs and outputs have a symbolic first dimension (None when
    the file already has one)."""
    import onnx

    m = onnx.load(path)
    fixed = [v for v in list(m.graph.input) + list(m.graph.output)
             if v.type.tensor_type.shape.dim and v.type.tensor_type.shape.dim[0].dim_value == 1]
    if not fixed:
        return None
    for v in fixed:
        v.type.tensor_type.shape.dim[0].dim_param = "N"
    del m.graph.value_info[:]
    out = os.path.join(out_dir, os.path.basename(path).replace(".onnx", "_batchN.onnx"))
    onnx.save(m, out)
    return out


def corpus_models(ids, out_dir):
    """name -> (path, {batch: QS_INPUT_SPEC}) for the corpus models."""
    found = {}
    for m in manifest():
        if m["id"] not in ids:
            continue
        path = os.path.join(corpus_dir(), m["id"] + ".onnx")
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run tools/setup.sh (or node tools/corpus.js)")
        specs = {}
        for batch in (1, 32):
            spec = []
            for name, typ, dims, gen in m["inputs"]:
                shape = list(dims)
                if shape and shape[0] == 1:
                    shape[0] = batch
                elif len(shape) == 3 and shape[1] == 1:  # a recurrent state [layers, batch, hidden]
                    shape[1] = batch
                spec.append(dict(name=name, type="int64" if typ == "i64" else "float32", shape=shape,
                                 **gen_range(gen)))
            specs[batch] = json.dumps(spec)
        found[m["id"]] = (path, specs, batch_free_copy(path, out_dir))
    return found


def measure(cmd, env=None):
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError((p.stderr.strip().splitlines() or ["failed"])[-1][:90])
    r = json.loads(p.stdout.strip().splitlines()[-1])
    return r["median_ms"], r["cpu_ms"], r.get("max_rel_diff")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rt"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=0.5, help="timed runs per measurement fill about this long")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--models", default="demo,mobilenet_v2,resnet18,corpus",
                    help="demo, mobilenet_v2, resnet18, corpus model ids or corpus (all of them)")
    ap.add_argument("--wait", choices=("passive", "default"), default="passive")
    args = ap.parse_args()

    ours = os.path.join(args.build, "bench", "runtime", "qs_bench_runtime")
    if not os.path.exists(ours):
        sys.exit(f"{ours} not found: ninja -C {args.build} qs_bench_runtime")
    ort_js = os.path.join(ROOT, "bench", "ort", "bench_ort.js")
    if not os.path.isdir(os.path.join(ROOT, "bench", "ort", "node_modules", "onnxruntime-node")):
        sys.exit("onnxruntime-node missing: cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci")
    names = []
    for n in args.models.split(","):
        names += [m["id"] for m in manifest()] if n == "corpus" else [n]
    out_dir = os.path.join(args.build, "bench")
    os.makedirs(out_dir, exist_ok=True)
    # name -> (path for batch 1, path for batch 32, {batch: QS_INPUT_SPEC} or input dims)
    models = {"demo": (os.path.join(ROOT, "resources", "demo", "fashion_cnn.onnx"), None, [1, 28, 28])}
    if "mobilenet_v2" in names or "resnet18" in names:
        exported = export_models(out_dir)
        models["mobilenet_v2"] = (exported["mobilenet_v2"], None, [3, 224, 224])
        models["resnet18"] = (exported["resnet18"], None, [3, 224, 224])
    for name, (path, specs, copy) in corpus_models(set(names), out_dir).items():
        models[name] = (path, copy, specs)

    wait_env = {"OMP_WAIT_POLICY": "PASSIVE", "QS_ORT_ALLOW_SPINNING": "0"} if args.wait == "passive" else {}
    base_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "QS_ORT_ALLOW_SPINNING")}
    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv), flush=True)
    print(f"CPU: {cpu_isa()}", flush=True)
    print(f"wait policy: {args.wait}; load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus",
          flush=True)
    rows = []
    print(f"{'model':<14}{'batch':>6}{'thr':>5}{'ours ms':>11}{'ORT ms':>11}{'ours/ORT':>10}"
          f"{'ours cpu':>11}{'ORT cpu':>11}{'cpu ratio':>10}{'passes diff':>13}", flush=True)
    for name in names:
        if name not in models:
            sys.exit(f"unknown model {name}")
        path1, path32, inputs = models[name]
        for batch in (1, 32):
            path = path32 if batch == 32 and path32 else path1
            for threads in (1, 2):
                env = dict(base_env, **wait_env, OMP_NUM_THREADS=str(threads))
                if isinstance(inputs, dict):
                    env["QS_INPUT_SPEC"] = inputs[batch]
                else:
                    env["QS_INPUT_DIMS"] = json.dumps(inputs)
                try:
                    once, _, diff = measure([ours, path, "--batch", str(batch), "--threads", str(threads), "--iters", "3",
                                             "--warmup", "1"] + (["--compare"] if threads == 1 else []), env)
                    iters = max(5, min(500, int(args.seconds * 1000 / max(once, 1e-3))))
                    a, b = [], []
                    for _ in range(args.repeat):
                        a.append(measure([ours, path, "--batch", str(batch), "--threads", str(threads),
                                          "--iters", str(iters), "--warmup", str(args.warmup)], env))
                        b.append(measure(["node", ort_js, path, str(batch), str(threads), str(iters),
                                          str(args.warmup)], env))
                except RuntimeError as e:
                    print(f"{name:<14}{batch:>6}{threads:>5}  failed: {e}", flush=True)
                    continue
                ma, mb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
                ca, cb = statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)
                rows.append((name, batch, threads, ma, mb, ma / mb, ca / cb))
                print(f"{name:<14}{batch:>6}{threads:>5}{ma:>11.3f}{mb:>11.3f}{ma / mb:>10.2f}"
                      f"{ca:>11.3f}{cb:>11.3f}{ca / cb:>10.2f}{'' if diff is None else f'{diff:>13.2e}'}", flush=True)
    over = [f"{r[0]} b{r[1]} t{r[2]} {r[5]:.2f}" for r in rows if r[5] > 1.1]
    print(f"worst ratio {max(r[5] for r in rows):.2f}, worst cpu ratio {max(r[6] for r in rows):.2f} "
          f"(target <= 1.10); above 1.10: {', '.join(over) or 'none'}; "
          f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
