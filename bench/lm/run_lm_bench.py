#!/usr/bin/python3
"""Language model tokens/s of QuantStudio's runtime vs ONNX Runtime, same run.

    /usr/bin/python3 bench/lm/run_lm_bench.py [--build build] [--repeat 5] [--iters 10]
        [--batches 1,8] [--threads 1,2] [--context 128] [--model M.onnx] [--text T.txt]
        [--w8a8 CALIB] [--bf16]

Times MODEL (default resources/demo/byte_gpt.onnx; the scale decoders of
bench/memory/make_decoder.py work too, their vocabulary covers the byte ids) on the
first BATCH non-overlapping windows of TEXT (default resources/demo/byte_gpt_val.txt;
int64 [BATCH, CONTEXT], one token per byte): qs_bench_lm (ours) and
bench/lm/bench_lm_ort.js (onnxruntime-node) alternate REPEAT times, each reporting the
median of ITERS runs; the table shows the median over the repeats of tokens/s, the
ratio ours/ORT (> 1: ours faster) and the same for process CPU time per run; both sides
also print the mean next-token NLL of the batch, which must agree (checked to 1e-4).
Idle pool threads block on both sides (OMP_WAIT_POLICY=PASSIVE, allow_spinning=0).
With --w8a8, a third column times our W8A8 INT8 plan (calibrated on CALIB windows) against
the same ORT FP32 baseline, with its mean NLL (not checked: quantization moves it) and
how its kernels ran: without VNNI or AMX, exactly on the fast kernels by the 7-bit weight
split, or on oneDNN's reference kernels (exact, slow) where the split does not apply.
With --bf16, a column times our BF16 plan (products with constant weights in bfloat16,
float32 accumulation) against the same ORT FP32 baseline, with its mean NLL (bf16 rounding
moves it slightly); native on AVX512-BF16 or AMX, emulated on other AVX-512 CPUs, refused
below. Every row prints the ISA. Needs `ninja -C BUILD qs_bench_lm` and `cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def measure(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--model", default=os.path.join(ROOT, "resources", "demo", "byte_gpt.onnx"))
    ap.add_argument("--text", default=os.path.join(ROOT, "resources", "demo", "byte_gpt_val.txt"))
    ap.add_argument("--w8a8", type=int, default=0, help="also time our W8A8 plan, calibrated on N windows")
    ap.add_argument("--bf16", action="store_true", help="also time our BF16 plan")
    args = ap.parse_args()

    ours = os.path.join(args.build, "bench", "lm", "qs_bench_lm")
    if not os.path.exists(ours):
        sys.exit(f"{ours} not found: ninja -C {args.build} qs_bench_lm")
    ort_js = os.path.join(ROOT, "bench", "lm", "bench_lm_ort.js")
    if not os.path.isdir(os.path.join(ROOT, "bench", "ort", "node_modules", "onnxruntime-node")):
        sys.exit("onnxruntime-node missing: cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci")
    model, text = args.model, args.text

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "QS_ORT_ALLOW_SPINNING")}
    print("command:", " ".join([os.path.basename(sys.executable)] + sys.argv), flush=True)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus", flush=True)
    print(f"model: {model}", flush=True)
    print(f"{'batch':>6}{'ctx':>5}{'thr':>5}{'ours tok/s':>12}{'ORT tok/s':>12}{'ours/ORT':>10}"
          f"{'ours cpu ms':>13}{'ORT cpu ms':>12}{'ORT/ours cpu':>14}"
          + (f"{'BF16 tok/s':>12}{'BF16/ORT':>10}{'ORT/BF16 cpu':>14}{'BF16 NLL':>10}" if args.bf16 else "")
          + (f"{'W8A8 tok/s':>12}{'W8A8/ORT':>10}{'W8A8 NLL':>10}  int8 kernels" if args.w8a8 else "")
          + "  ISA", flush=True)
    ratios = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for threads in [int(t) for t in args.threads.split(",")]:
            env = dict(base, OMP_WAIT_POLICY="PASSIVE", QS_ORT_ALLOW_SPINNING="0", OMP_NUM_THREADS=str(threads))
            a, b, q, h = [], [], [], []
            cmd = [ours, model, text, "--batch", str(batch), "--context", str(args.context),
                   "--threads", str(threads), "--iters", str(args.iters), "--warmup", str(args.warmup)]
            for _ in range(args.repeat):
                a.append(measure(cmd, env))
                if args.bf16:
                    h.append(measure(cmd + ["--bf16"], env))
                if args.w8a8:
                    q.append(measure(cmd + ["--w8a8", str(args.w8a8)], env))
                b.append(measure(["node", ort_js, model, text, str(batch), str(args.context), str(threads),
                                  str(args.iters), str(args.warmup)], env))
            if abs(a[0]["mean_nll"] - b[0]["mean_nll"]) > 1e-4:
                sys.exit(f"mean NLL differs: ours {a[0]['mean_nll']} vs ORT {b[0]['mean_nll']}")
            ta = statistics.median(x["tokens_per_second"] for x in a)
            tb = statistics.median(x["tokens_per_second"] for x in b)
            ca = statistics.median(x["cpu_ms"] for x in a)
            cb = statistics.median(x["cpu_ms"] for x in b)
            ratios.append(ta / tb)
            extra = ""
            if h:
                th = statistics.median(x["tokens_per_second"] for x in h)
                ch = statistics.median(x["cpu_ms"] for x in h)
                extra += f"{th:>12.0f}{th / tb:>10.2f}{cb / ch:>14.2f}{h[0]['mean_nll']:>10.4f}"
            if q:
                tq = statistics.median(x["tokens_per_second"] for x in q)
                kind = f"{q[0]['int8_split_kernels']} 7-bit split, {q[0]['int8_reference_kernels']} reference"
                extra += f"{tq:>12.0f}{tq / tb:>10.2f}{q[0]['mean_nll']:>10.4f}  {q[0]['int8_layers']} layers: {kind}"
            print(f"{batch:>6}{args.context:>5}{threads:>5}{ta:>12.0f}{tb:>12.0f}{ta / tb:>10.2f}"
                  f"{ca:>13.2f}{cb:>12.2f}{cb / ca:>14.2f}{extra}  {a[0]['isa']}", flush=True)
    print(f"median tokens/s ratio ours/ORT {statistics.median(ratios):.2f} over {len(ratios)} configurations "
          f"(mean NLL agrees: {a[0]['mean_nll']:.6f}); load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
