#!/usr/bin/python3
"""The studio opening a model: time until it is shown, until its jobs finish, stalls, memory.

    /usr/bin/python3 bench/ui/run_open_bench.py [--build build] [--repeat R] [--lock FILE]
        [MODEL...]   (default: fashion_cnn ocr_rec decoder162m; also decoder1b, or a path)

Runs `quantstudio MODEL --db TMP --measure-open` under xvfb-run (1600x1000x24) R times
(default 3): `--measure-open` prints the time from start until the window is built and
its event loop runs ("window"), until the model's first paint ("shown") and until every
job opening started has finished ("done": weight statistics, stored results, sizes),
the process's CPU time (all threads, user + system) at shown and at done (what the
opening costs whatever the machine's load; wall times grow with it),
the longest gap between ticks of a 10 ms timer on the GUI thread after the window is
built (wall, and the GUI thread's own CPU time: the stall the studio causes, not other
processes'), and the process's peak resident memory (VmHWM; /usr/bin/time -f %M
around xvfb-run would measure Xvfb). Prints medians, the file size and peak/file, with
targets: decoder1b shown in under 10 s, stalls under 100 ms. The decoders are written by
bench/memory/make_decoder.py into BUILD/bench/memory on first use; --lock FILE runs
each process under `flock FILE` (the shared machine's lock for runs above 3 GB).
Needs `ninja -C BUILD quantstudio` and xvfb-run.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'bench', 'corpus'))
sys.path.insert(0, os.path.join(ROOT, 'bench', 'memory'))
from run_corpus_bench import corpus_dir, cpu_isa  # noqa: E402
from run_memory_bench import DECODERS, decoder_path, model_bytes  # noqa: E402

LINE = re.compile(r'measure-open: startup (\d+) ms, shown (\d+) ms, all jobs done (\d+) ms, longest stall ([\d.]+) ms wall, '
                  r'([\d.]+) ms GUI CPU \(ending at \d+ ms\), peak (\d+) MiB; process CPU (\d+) ms at shown, (\d+) ms at done')


def model_path(name, work):
    if name in DECODERS:
        return decoder_path(work, name)
    if name == 'fashion_cnn':
        return os.path.join(ROOT, 'resources', 'demo', 'fashion_cnn.onnx')
    if os.path.exists(name):
        return name
    path = os.path.join(corpus_dir(), name + '.onnx')
    if not os.path.exists(path):
        sys.exit(f'{name}: neither a decoder ({", ".join(DECODERS)}), a corpus model nor a file')
    return path


def open_once(exe, path, lock):
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ['xvfb-run', '-a', '-s', '-screen 0 1600x1000x24', exe, path, '--db', os.path.join(tmp, 'x.db'),
               '--size', '1600x1000', '--measure-open']
        if lock:
            cmd = ['flock', lock] + cmd
        env = dict(os.environ, OMP_WAIT_POLICY='PASSIVE', XDG_CONFIG_HOME=tmp, XDG_DATA_HOME=tmp)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        m = LINE.search(p.stdout)
        if p.returncode != 0 or not m:
            err = [line for line in p.stderr.splitlines() if line.strip()]
            sys.exit(f"{' '.join(cmd)}: exit {p.returncode}: {(err or ['no measure-open line'])[-1]}")
        return tuple(float(x) for x in m.groups())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--repeat', type=int, default=3)
    ap.add_argument('--lock', default='')
    ap.add_argument('models', nargs='*', default=['fashion_cnn', 'ocr_rec', 'decoder162m'])
    a = ap.parse_args()
    exe = os.path.join(a.build, 'app', 'quantstudio')
    if not os.path.exists(exe):
        sys.exit(f'{exe} is missing: ninja -C {a.build} quantstudio')
    work = os.path.join(a.build, 'bench', 'memory')
    os.makedirs(work, exist_ok=True)
    print(f'# {cpu_isa()}; load {os.getloadavg()[0]:.1f}; medians of {a.repeat}')
    print('| model | file MB | window s | shown s | done s | CPU s at shown | CPU s at done | stall ms wall | '
          'stall ms GUI CPU | peak MB | peak/file |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    ok = True
    for name in a.models:
        path = model_path(name, work)
        runs = [open_once(exe, path, a.lock) for _ in range(a.repeat)]
        startup, shown, done, stall, cpu, peak, cpu_shown, cpu_done = (statistics.median(c) for c in zip(*runs))
        file_mb = model_bytes(path) / 2**20
        print(f'| {os.path.basename(path)} | {file_mb:.0f} | {startup / 1e3:.2f} | {shown / 1e3:.2f} | {done / 1e3:.2f} | '
              f'{cpu_shown / 1e3:.2f} | {cpu_done / 1e3:.2f} | {stall:.0f} | {cpu:.0f} | {peak:.0f} | {peak / file_mb:.2f} |',
              flush=True)
        ok = ok and cpu < 100 and (name != 'decoder1b' or shown < 10000)
    print('targets (stall < 100 ms of GUI CPU; decoder1b shown < 10 s):', 'ok' if ok else 'MISSED')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
