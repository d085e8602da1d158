#!/usr/bin/python3
"""Peak memory of `quantstudio-cli run` against ONNX Runtime on the same files and batches.

    /usr/bin/python3 bench/memory/run_memory_bench.py [--build build] [--batches 3] [--threads N]
        [--sizes 1,32] [--node-modules bench/ort/node_modules] [MODEL...]

For each model (the demo CNN; PaddleOCR's direction classifier ocr_cls, a CNN, and its
recognizer ocr_rec, a CNN plus transformer, from the corpus cache that tools/setup.sh
fills) and batch 1 and 32: our peak resident memory (`/usr/bin/time -f %M` around
`quantstudio-cli run MODEL --data X.npy --batch B`, BATCHES batches of random inputs, so
that the third and later go through the batch shards) against onnxruntime-node's
(bench/ort/bench_ort.js, one session, the same batch, as many runs), the ratio (target
<= 1.5), our compile time and both run times per batch. The PaddleOCR models declare
their image width (and the classifier its height) unknown: the script runs both
runtimes on a copy in BUILD/bench/memory with those dimensions fixed (48x192, 48x320).
QS_RUNTIME_MEMORY=1 makes the CLI print its arena plan on stderr.
Needs `ninja -C BUILD quantstudio-cli` and `cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci`.
"""
import argparse
import array
import json
import os
import random
import re
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'bench', 'corpus'))
from run_corpus_bench import corpus_dir, cpu_isa  # noqa: E402


# name: (file, sample dims [C, H, W]); None in a file's path: the corpus cache.
MODELS = {
    'fashion_cnn': (os.path.join(ROOT, 'resources', 'demo', 'fashion_cnn.onnx'), [1, 28, 28]),
    'ocr_cls': (None, [3, 48, 192]),
    'ocr_rec': (None, [3, 48, 320]),
}


# ---- a minimal protobuf rewrite: the first graph input's dims fixed (no python onnx here)

def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7f) << s
        s += 7
        if c < 0x80:
            return r, i


def _enc(v):
    out = bytearray()
    while True:
        c, v = v & 0x7f, v >> 7
        out.append(c | 0x80 if v else c)
        if not v:
            return bytes(out)


def _fields(b):
    i, out = 0, []
    while i < len(b):
        key, i = _varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = _varint(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        elif w == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise SystemExit(f'unexpected protobuf wire type {w}')
        out.append((f, w, v))
    return out


def _ser(fields):
    out = bytearray()
    for f, w, v in fields:
        out += _enc(f << 3 | w)
        out += _enc(v) if w == 0 else (_enc(len(v)) + v if w == 2 else v)
    return bytes(out)


def _edit(b, field, fn):
    return _ser([(f, w, fn(v) if f == field and w == 2 else v) for f, w, v in _fields(b)])


def fix_input_dims(src, dst, dims):
    """Copies model `src` to `dst` with its first input's dims 1.. set to `dims` (dim 0 kept).
    ModelProto.graph(7) > GraphProto.input(11) > ValueInfoProto.type(2) > TypeProto.tensor_type(1)
    > shape(2) > dim(1): dim_value(1)."""
    def shape(b):
        fs = _fields(b)
        old = [v for f, w, v in fs if f == 1]
        if len(old) != len(dims) + 1:
            raise SystemExit(f'{src}: first input has rank {len(old)}, expected {len(dims) + 1}')
        new = [(1, 2, old[0])] + [(1, 2, _ser([(1, 0, d)])) for d in dims]
        return _ser(new + [x for x in fs if x[0] != 1])

    def graph(b):
        out, done = [], False
        for f, w, v in _fields(b):
            if f == 11 and not done:
                done = True
                v = _edit(v, 2, lambda t: _edit(t, 1, lambda tt: _edit(tt, 2, shape)))
            out.append((f, w, v))
        return _ser(out)

    with open(src, 'rb') as f:
        model = f.read()
    with open(dst, 'wb') as f:
        f.write(_edit(model, 7, graph))


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--batches', type=int, default=3, help='batches per run (3: the last goes through batch shards)')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--sizes', default='1,32', help='batch sizes')
    ap.add_argument('--node-modules', default=os.path.join(ROOT, 'bench', 'ort', 'node_modules'),
                    help='where onnxruntime-node is installed (e.g. another checkout\'s bench/ort/node_modules)')
    ap.add_argument('models', nargs='*', default=list(MODELS))
    args = ap.parse_args()

    cli = os.path.join(args.build, 'app', 'quantstudio-cli')
    if not os.path.exists(cli):
        sys.exit(f'{cli} not found: ninja -C {args.build} quantstudio-cli')
    ort_js = os.path.join(ROOT, 'bench', 'ort', 'bench_ort.js')
    if not os.path.isdir(os.path.join(args.node_modules, 'onnxruntime-node')):
        sys.exit('onnxruntime-node missing: cd bench/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci')
    work = os.path.join(args.build, 'bench', 'memory')
    os.makedirs(work, exist_ok=True)

    print('command:', ' '.join([os.path.basename(sys.executable)] + sys.argv), flush=True)
    print(f'CPU: {cpu_isa()}; {args.threads} threads; {args.batches} batches per process; '
          f'load average at start {os.getloadavg()[0]:.1f}', flush=True)
    print('| model | batch | ours MB | ORT MB | ours/ORT | ours compile s | ours ms/batch | ORT ms/batch |')
    print('|---|---|---|---|---|---|---|---|', flush=True)
    worst = 0.0
    for name in args.models:
        if name not in MODELS:
            sys.exit(f'unknown model {name}; known: {", ".join(MODELS)}')
        path, dims = MODELS[name]
        if path is None:
            src = os.path.join(corpus_dir(), name + '.onnx')
            if not os.path.exists(src):
                sys.exit(f'{src} is missing: run tools/setup.sh (or node tools/corpus.js)')
            path = os.path.join(work, name + '.onnx')
            fix_input_dims(src, path, dims)
        for batch in (int(b) for b in args.sizes.split(',')):
            data = os.path.join(work, f'{name}_{batch}x{args.batches}.npy')
            if not os.path.exists(data):
                write_npy(data, [batch * args.batches] + dims)
            out, ours_mb = timed([cli, 'run', path, '--data', data, '--batch', str(batch), '--threads',
                                  str(args.threads), '--json'])
            r = json.loads(out)
            env = dict(os.environ, QS_INPUT_DIMS=json.dumps(dims), NODE_PATH=args.node_modules)
            out, ort_mb = timed(['node', ort_js, path, str(batch), str(args.threads), str(args.batches), '0'], env)
            ort_ms = json.loads(out.strip().splitlines()[-1])['median_ms']
            ratio = ours_mb / ort_mb
            worst = max(worst, ratio)
            print(f"| {name} | {batch} | {ours_mb:.0f} | {ort_mb:.0f} | {ratio:.2f} | {r['compile_seconds']:.2f} | "
                  f"{1000 * r['seconds'] / args.batches:.1f} | {ort_ms:.1f} |", flush=True)
    print(f'worst ratio {worst:.2f} (target <= 1.5); load average at end {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
    main()
