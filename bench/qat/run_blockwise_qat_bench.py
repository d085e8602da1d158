#!/usr/bin/python3
"""Block-by-block QAT of a GPT-style decoder: peak resident memory, seconds per step and
the CPU's ISA of `quantstudio-cli qat --mode blocks` (W4 g32 weights, A8 activations).

    /usr/bin/python3 bench/qat/run_blockwise_qat_bench.py [--build build] [--steps 28]
        [--batch 2] [--width 768 --layers 12 --heads 12 --vocab 50257] [--lock FILE]

The decoder (default: the 162M one, d 768, 12 layers, vocabulary 50257, context 128,
649 MB) is written by bench/memory/make_decoder.py into BUILD/bench/qat on first use.
Training windows are the first 6144 bytes of resources/demo/byte_gpt_val.txt, held-out
ones the rest (2 windows evaluated). Block mode keeps one block's net, gradients and
Adam state, a copy of its FP32 weights (its teacher) and the pool's quantized and FP32
inputs to that block; the weights are otherwise in memory once (the session's graph,
trained in place). The target is a peak under 4 GB.
Peak memory is `/usr/bin/time -f %M` of training and its two evaluations (no --out: the
checkpoint is neither written nor quantized and recorded, which loads the model again);
s/step is the CLI's own training time per step (without the evaluations). --lock FILE runs the command under
`flock FILE` (a shared machine's lock for large runs).
"""
import argparse
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXT = os.path.join(ROOT, "resources", "demo", "byte_gpt_val.txt")
TRAIN_BYTES = 6144


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--steps", type=int, default=28)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--lock", help="run the CLI under flock FILE")
    args = ap.parse_args()
    work = os.path.join(args.build, "bench", "qat")
    os.makedirs(work, exist_ok=True)
    model = os.path.join(work, f"decoder_d{args.width}_l{args.layers}_v{args.vocab}.onnx")
    if not os.path.exists(model):
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "bench", "memory", "make_decoder.py"), model,
                        "--width", str(args.width), "--layers", str(args.layers), "--heads", str(args.heads),
                        "--vocab", str(args.vocab), "--context", "128"], check=True)
    with open(TEXT, "rb") as f:
        data = f.read()
    train, held = os.path.join(work, "train.txt"), os.path.join(work, "eval.txt")
    with open(train, "wb") as f:
        f.write(data[:TRAIN_BYTES])
    with open(held, "wb") as f:
        f.write(data[TRAIN_BYTES:])
    cli = os.path.join(args.build, "app", "quantstudio-cli")
    cmd = [cli, "qat", model, "--data", "text:" + train, "--eval-data", "text:" + held, "--context", "128",
           "--wbits", "4", "--abits", "8", "--granularity", "group:32", "--mode", "blocks", "--steps",
           str(args.steps), "--batch", str(args.batch), "--eval-limit", "2", "--calib-limit", "2", "--eval-every",
           "0", "--json"]  # no --out: the checkpoint is not written nor quantized (training's peak)
    timed = ["/usr/bin/time", "-f", "QS_PEAK_KB %M QS_WALL_S %e"] + cmd
    if args.lock:
        timed = ["flock", args.lock] + timed
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    p = subprocess.run(timed, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr.strip()[-2000:]}")
    peak_kb, wall = re.findall(r"QS_PEAK_KB (\d+) QS_WALL_S ([0-9.]+)", p.stderr)[-1]
    r = json.loads(p.stdout)
    blocks = sorted({s["block"] for s in r["steps"]})
    held_out = r["held_out"]
    print("command:", " ".join(cmd))
    print(f"model {os.path.basename(model)} ({os.path.getsize(model) / 2**20:.0f} MB), {len(blocks)} blocks, "
          f"{args.steps} steps of {args.batch} windows of 128 bytes")
    print(f"peak {int(peak_kb) / 1024:.0f} MB (target < 4096), {r['seconds_per_step']:.2f} s per step, "
          f"{float(wall):.0f} s in all; CPU {r['cpu_isa']}")
    print(f"held-out KD {held_out[0]['kd']:.6f} -> {held_out[-1]['kd']:.6f}; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
