#!/usr/bin/python3
"""Peak memory of `quantstudio-cli run` against ONNX Runtime on the same files and batches.

    /usr/bin/python3 bench/memory/run_memory_bench.py [--build build] [--batches 3] [--threads N]
        [--sizes 1,32] [--decoder-sizes 1,8] [--repeat R] [--node-modules bench/ort/node_modules]
        [MODEL...]    (default: fashion_cnn ocr_cls ocr_rec decoder162m; also decoder1b)

For each model (the demo CNN; PaddleOCR's direction classifier ocr_cls, a CNN, and its
recognizer ocr_rec, a CNN plus transformer, from the corpus cache that tools/setup.sh
fills) and batch 1 and 32: our peak resident memory (`/usr/bin/time -f %M` around
`quantstudio-cli run MODEL --data X.npy --batch B`, BATCHES batches of random inputs, so
that the third and later go through the batch shards) against onnxruntime-node's
(bench/ort/bench_ort.js, one session, the same batch, as many runs), the ratio (target
<= 1.5), our compile time and both run times per batch. The PaddleOCR models declare
their image width (and the classifier its height) unknown: the script runs both
runtimes on a copy in BUILD/bench/memory with those dimensions fixed (48x192, 48x320).

The decoders are GPT-style models with random weights that make_decoder.py writes into
BUILD/bench/memory on first use (decoder162m: d 768, 12 layers, vocabulary 50257,
context 128, 649 MB; decoder1b: d 2048, 20 layers, vocabulary 32000, 1.1B parameters,
external data). For each --decoder-sizes batch B: `run MODEL --data text:byte_gpt_val.txt
--context 128 --limit B --batch B` (one batch of B byte windows) against
bench/lm/bench_lm_ort.js on the same windows, with both perplexities (they must agree:
the relative difference is printed); then `inspect MODEL`: peak memory against the file
size (target <= 1.5x) and wall time (target < 2 s). R > 1 runs every process R times
and prints medians. QS_RUNTIME_MEMORY=1 makes the CLI print its arena plan on stderr.

--pipeline DECODERS (e.g. decoder162m, or decoder162m,decoder1b for the 1.1B too; off by
default) adds the rest of the issue's flow on each decoder, one process per cell, each
timed and its peak taken the same way, on WINDOWS (8) byte windows of 128 tokens in
batches of 4: `perplexity` is `run MODEL --data text:byte_gpt_val.txt --context 128
--limit 8 --batch 4` (against bench_lm_ort.js on the same windows in one batch: the only
cell with an ORT baseline); `quantize rtn` and `quantize gptq` are `quantize MODEL
--wbits 4 --abits 16 --granularity group:128 [--algo gptq] --calib-limit 8 --eval-limit 8
--batch 4 --context 128 --data text:byte_gpt_val.txt --db STORE` (W4 g128 weight-only,
perplexity of FP32 and quantized on the same windows); `sensitivity` is `sensitivity MODEL
--bits 4 --granularity group:128 --limit 8 --batch 4 ...` over every linear layer; `export`
is `export RUN --db STORE --format qdq --out X.onnx` of the RTN run (replayed, then
written). The 1.1B cells take long (GPTQ's Cholesky on 8192 columns, a sensitivity pass
per layer): --pipeline-skip gptq,sensitivity leaves cells out.
Needs `ninja -C BUILD quantstudio-cli` and `cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci`.
"""
import argparse
import array
import json
import math
import os
import random
import re
import statistics
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'bench', 'corpus'))
from run_corpus_bench import corpus_dir, cpu_isa  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_proto import edit, fields, ser  # noqa: E402


# name: (file, sample dims [C, H, W]); None in a file's path: the corpus cache.
MODELS = {
    'fashion_cnn': (os.path.join(ROOT, 'resources', 'demo', 'fashion_cnn.onnx'), [1, 28, 28]),
    'ocr_cls': (None, [3, 48, 192]),
    'ocr_rec': (None, [3, 48, 320]),
}


def fix_input_dims(src, dst, dims):
    """Copies model `src` to `dst` with its first input's dims 1.. set to `dims` (dim 0 kept).
    ModelProto.graph(7) > GraphProto.input(11) > ValueInfoProto.type(2) > TypeProto.tensor_type(1)
    > shape(2) > dim(1): dim_value(1)."""
    def shape(b):
        fs = fields(b)
        old = [v for f, w, v in fs if f == 1]
        if len(old) != len(dims) + 1:
            raise SystemExit(f'{src}: first input has rank {len(old)}, expected {len(dims) + 1}')
        new = [(1, 2, old[0])] + [(1, 2, ser([(1, 0, d)])) for d in dims]
        return ser(new + [x for x in fs if x[0] != 1])

    def graph(b):
        out, done = [], False
        for f, w, v in fields(b):
            if f == 11 and not done:
                done = True
                v = edit(v, 2, lambda t: edit(t, 1, lambda tt: edit(tt, 2, shape)))
            out.append((f, w, v))
        return ser(out)

    with open(src, 'rb') as f:
        model = f.read()
    with open(dst, 'wb') as f:
        f.write(edit(model, 7, graph))


def write_npy(path, shape, seed=0):
    n = 1
    for d in shape:
        n *= d
    rng = random.Random(seed)
    values = array.array('f', (rng.uniform(-1, 1) for _ in range(n)))
    dims = ', '.join(str(d) for d in shape) + (',' if len(shape) == 1 else '')
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % dims
    header += ' ' * (63 - (10 + len(header)) % 64) + '\n'
    with open(path, 'wb') as f:
        f.write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode() + values.tobytes())


def timed(cmd, env=None):
    """(stdout, peak RSS in MB) of cmd under /usr/bin/time; exits with its error on failure."""
    p = subprocess.run(['/usr/bin/time', '-f', 'QS_PEAK_KB %M'] + cmd, capture_output=True, text=True, env=env)
    peak = re.findall(r'QS_PEAK_KB (\d+)', p.stderr)
    if p.returncode != 0:
        err = [l for l in p.stderr.splitlines() if l.strip() and not l.startswith('QS_PEAK_KB')]
        raise SystemExit(f"{' '.join(cmd)}: {(err or ['failed'])[-1]}")
    return p.stdout, int(peak[-1]) / 1024


# name: make_decoder.py arguments; generated into BUILD/bench/memory when missing.
DECODERS = {
    'decoder162m': ['--width', '768', '--layers', '12', '--heads', '12', '--vocab', '50257', '--context', '128'],
    'decoder1b': ['--width', '2048', '--layers', '20', '--heads', '16', '--vocab', '32000', '--context', '128'],
}
TEXT = os.path.join(ROOT, 'resources', 'demo', 'byte_gpt_val.txt')


PIPELINE_CELLS = ('perplexity', 'quantize rtn', 'quantize gptq', 'sensitivity', 'export')


def pipeline(cli, lm_js, work, name, path, threads, windows, skip):
    """Rows (cell, ours MB, ORT MB or None, seconds, note) of the flow on one decoder."""
    data = ['--data', 'text:' + TEXT, '--context', '128', '--threads', str(threads)]
    w4 = ['--wbits', '4', '--abits', '16', '--granularity', 'group:128']
    store = os.path.join(work, f'{name}_pipeline.db')
    if os.path.exists(store):
        os.remove(store)
    rows, rtn_run = [], None
    for cell in PIPELINE_CELLS:
        if cell.split()[-1] in skip or cell in skip:
            continue
        t = time.monotonic()
        ort_mb, note = None, ''
        if cell == 'perplexity':
            out, mb = timed([cli, 'run', path, '--limit', str(windows), '--batch', '4', '--json'] + data)
            note = f"perplexity {json.loads(out)['perplexity']:.4f}"
            seconds = time.monotonic() - t
            out, ort_mb = timed(['node', lm_js, path, TEXT, str(windows), '128', str(threads), '1', '1'])
            note += f", ORT {math.exp(json.loads(out.strip().splitlines()[-1])['mean_nll']):.4f}"
        elif cell.startswith('quantize'):
            algo = ['--algo', 'gptq'] if cell.endswith('gptq') else []
            out, mb = timed([cli, 'quantize', path] + w4 + algo + ['--calib-limit', str(windows), '--eval-limit',
                            str(windows), '--batch', '4', '--db', store, '--json'] + data)
            seconds = time.monotonic() - t
            r = json.loads(out)
            note = f"perplexity FP32 {r['fp32_perplexity']:.4f}, W4 {r['perplexity']:.4f}"
            if cell.endswith('rtn'):
                rtn_run = r['run_id']
        elif cell == 'sensitivity':
            out, mb = timed([cli, 'sensitivity', path, '--bits', '4', '--granularity', 'group:128', '--limit',
                             str(windows), '--batch', '4', '--json'] + data)
            seconds = time.monotonic() - t
            note = f"{len(json.loads(out).get('layers', []))} layers"
        else:
            if rtn_run is None:
                continue
            qdq = os.path.join(work, f'{name}_w4g128.onnx')
            out, mb = timed([cli, 'export', str(rtn_run), '--db', store, '--format', 'qdq', '--out', qdq])
            seconds = time.monotonic() - t
            note = f'QDQ {model_bytes(qdq) / 2**20:.0f} MB'
        rows.append((cell, mb, ort_mb, seconds, note))
        print(f"| {name} | {cell} | {mb:.0f} | {'' if ort_mb is None else f'{ort_mb:.0f}'} | "
              f"{'' if ort_mb is None else f'{mb / ort_mb:.2f}'} | {seconds:.1f} | {note} |", flush=True)
    return rows


def median_of(runs):
    """runs: list of tuples of numbers -> tuple of medians."""
    return tuple(statistics.median(col) for col in zip(*runs))


def decoder_path(work, name):
    path = os.path.join(work, name + '.onnx')
    if not os.path.exists(path):
        subprocess.run(['/usr/bin/python3', os.path.join(ROOT, 'bench', 'memory', 'make_decoder.py'), path]
                       + DECODERS[name], check=True)
    return path


def model_bytes(path):
    data = path + '.data'
    return os.path.getsize(path) + (os.path.getsize(data) if os.path.exists(data) else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--batches', type=int, default=3, help='batches per run (3: the last goes through batch shards)')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--sizes', default='1,32', help='batch sizes')
    ap.add_argument('--decoder-sizes', default='1,8', help='batch sizes of the decoders (windows of 128 tokens)')
    ap.add_argument('--repeat', type=int, default=1, help='processes per cell; the table shows medians')
    ap.add_argument('--node-modules', default=os.path.join(ROOT, 'bench', 'ort', 'node_modules'),
                    help='where onnxruntime-node is installed (e.g. another checkout\'s bench/ort/node_modules)')
    ap.add_argument('--pipeline', default='', help='decoders to run perplexity, quantize, sensitivity and '
                    'export on (decoder162m, decoder1b: comma-separated; none by default)')
    ap.add_argument('--pipeline-skip', default='', help='cells to leave out: perplexity, rtn, gptq, sensitivity, export')
    ap.add_argument('--only-pipeline', action='store_true', help='skip the run/inspect tables')
    ap.add_argument('--windows', type=int, default=8, help='byte windows of 128 tokens for --pipeline')
    ap.add_argument('models', nargs='*', default=list(MODELS) + ['decoder162m'],
                    help=f'of {", ".join(list(MODELS) + list(DECODERS))}')
    args = ap.parse_args()
    if args.only_pipeline:
        args.models = []

    cli = os.path.join(args.build, 'app', 'quantstudio-cli')
    if not os.path.exists(cli):
        sys.exit(f'{cli} not found: ninja -C {args.build} quantstudio-cli')
    ort_js = os.path.join(ROOT, 'bench', 'ort', 'bench_ort.js')
    lm_js = os.path.join(ROOT, 'bench', 'lm', 'bench_lm_ort.js')
    if not os.path.isdir(os.path.join(args.node_modules, 'onnxruntime-node')):
        sys.exit('onnxruntime-node missing: cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci')
    work = os.path.join(args.build, 'bench', 'memory')
    os.makedirs(work, exist_ok=True)
    for name in args.models:
        if name not in MODELS and name not in DECODERS:
            sys.exit(f'unknown model {name}; known: {", ".join(list(MODELS) + list(DECODERS))}')

    print('command:', ' '.join([os.path.basename(sys.executable)] + sys.argv), flush=True)
    print(f'CPU: {cpu_isa()}; {args.threads} threads; {args.batches} batches per process (decoders: 1); '
          f'medians of {args.repeat}; load average at start {os.getloadavg()[0]:.1f}', flush=True)
    print('| model | batch | ours MB | ORT MB | ours/ORT | ours compile s | ours ms/batch | ORT ms/batch |')
    print('|---|---|---|---|---|---|---|---|', flush=True)
    worst, lm_rows, inspect_rows = 0.0, [], []
    for name in args.models:
        decoder = name in DECODERS
        if decoder:
            path, sizes = decoder_path(work, name), args.decoder_sizes
        else:
            path, dims = MODELS[name]
            sizes = args.sizes
            if path is None:
                src = os.path.join(corpus_dir(), name + '.onnx')
                if not os.path.exists(src):
                    sys.exit(f'{src} is missing: run tools/setup.sh (or node tools/corpus.js)')
                path = os.path.join(work, name + '.onnx')
                fix_input_dims(src, path, dims)
        for batch in (int(b) for b in sizes.split(',')):
            runs = []
            for _ in range(args.repeat):
                if decoder:
                    # One batch of BATCH windows on each side, so that both perplexities score the same tokens.
                    out, ours_mb = timed([cli, 'run', path, '--data', 'text:' + TEXT, '--context', '128',
                                          '--limit', str(batch), '--batch', str(batch), '--threads',
                                          str(args.threads), '--json'])
                    r = json.loads(out)
                    out, ort_mb = timed(['node', lm_js, path, TEXT, str(batch), '128', str(args.threads), '1', '1'])
                    o = json.loads(out.strip().splitlines()[-1])
                    runs.append((ours_mb, ort_mb, r['compile_seconds'], 1000 * r['seconds'], o['median_ms'],
                                 r['perplexity'], math.exp(o['mean_nll'])))
                else:
                    data = os.path.join(work, f'{name}_{batch}x{args.batches}.npy')
                    if not os.path.exists(data):
                        write_npy(data, [batch * args.batches] + dims)
                    out, ours_mb = timed([cli, 'run', path, '--data', data, '--batch', str(batch), '--threads',
                                          str(args.threads), '--json'])
                    r = json.loads(out)
                    env = dict(os.environ, QS_INPUT_DIMS=json.dumps(dims), NODE_PATH=args.node_modules)
                    out, ort_mb = timed(['node', ort_js, path, str(batch), str(args.threads), str(args.batches),
                                         '0'], env)
                    runs.append((ours_mb, ort_mb, r['compile_seconds'], 1000 * r['seconds'] / args.batches,
                                 json.loads(out.strip().splitlines()[-1])['median_ms']))
            m = median_of(runs)
            ratio = m[0] / m[1]
            worst = max(worst, ratio)
            print(f"| {name} | {batch} | {m[0]:.0f} | {m[1]:.0f} | {ratio:.2f} | {m[2]:.2f} | {m[3]:.1f} | "
                  f"{m[4]:.1f} |", flush=True)
            if decoder:
                lm_rows.append((name, batch, runs[0][5], runs[0][6]))
        if decoder:
            runs = []
            for _ in range(args.repeat):
                t = time.monotonic()
                _, mb = timed([cli, 'inspect', path])
                runs.append((mb, time.monotonic() - t))
            inspect_rows.append((name, model_bytes(path) / 2**20) + median_of(runs))
    print(f'worst ratio {worst:.2f} (target <= 1.5)')
    if lm_rows:
        print('\n| decoder | batch | ours perplexity | ORT perplexity | relative difference |')
        print('|---|---|---|---|---|')
        for name, batch, ours, ort in lm_rows:
            print(f'| {name} | {batch} | {ours:.4f} | {ort:.4f} | {abs(ours - ort) / ort:.1e} |')
    if inspect_rows:
        print('\n| decoder | file MB | `inspect` peak MB | peak/file (target <= 1.5) | `inspect` s (target < 2) |')
        print('|---|---|---|---|---|')
        for name, file_mb, mb, seconds in inspect_rows:
            print(f'| {name} | {file_mb:.0f} | {mb:.0f} | {mb / file_mb:.2f} | {seconds:.2f} |')
    pipes = [p for p in args.pipeline.split(',') if p]
    if pipes:
        skip = {s for s in args.pipeline_skip.split(',') if s}
        print(f'\nCPU: {cpu_isa()}; {args.threads} threads; load average {os.getloadavg()[0]:.1f}')
        print('| decoder | step | ours MB | ORT MB | ours/ORT | seconds | result |')
        print('|---|---|---|---|---|---|---|', flush=True)
        for name in pipes:
            if name not in DECODERS:
                sys.exit(f'--pipeline: unknown decoder {name}; known: {", ".join(DECODERS)}')
            pipeline(cli, lm_js, work, name, decoder_path(work, name), args.threads, args.windows, skip)
    print(f'load average at end {os.getloadavg()[0]:.1f}')

if __name__ == '__main__':
    main()
