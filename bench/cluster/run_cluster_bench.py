#!/usr/bin/python3
"""A sharded sensitivity sweep through Slurm against the same sweep on one machine.

    /usr/bin/python3 bench/cluster/run_cluster_bench.py [--build build] [--cpus 1,2]
        [--shards 4] [--repeat 2] [--bits 2,3,4,5,6,8] [--limit 512]

For each CPU count, starts a one-node Slurm cluster with that many CPUs
(tools/slurm_local.sh start DIR CPUS; needs root, slurm-wlm, munge) and times, on the
demo CNN and its Fashion-MNIST slice:
  local      quantstudio-cli sensitivity with OMP_NUM_THREADS=CPUS (the baseline)
  slurm/1    --slurm --shards 1: one task, so slurm/1 - local is the fixed cost of
             submitting, starting a shard process and following it
  slurm/N    --slurm --shards N --cpus-per-task 1: N tasks, CPUS at a time
Prints the medians of wall time, slurm/N over local, the fixed cost (slurm/1 - local)
and the per-shard overhead ((slurm/N x CPUS - local) / N: the CPU time each shard adds
beyond its share of the sweep), with a shard's own measured sweep time. Checks that every merged run's layer rows equal the local run's.
The cluster is stopped after each CPU count. Needs `ninja -C BUILD quantstudio-cli`.
"""
import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "tools", "slurm_local.sh")
MODEL = os.path.join(ROOT, "resources", "demo", "fashion_cnn.onnx")
DATA = os.path.join(ROOT, "resources", "demo", "fashion1k-images-idx3-ubyte.gz")


def rows(db):
    with sqlite3.connect(db) as c:
        return c.execute("select layer, position, sensitivity, sensitivity_detail, extra from layer_results "
                         "order by position").fetchall()


def timed(cmd, env):
    t0 = time.monotonic()
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr}")
    return time.monotonic() - t0, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--cpus", default="1,2")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--bits", default="2,3,4,5,6,8")
    ap.add_argument("--limit", type=int, default=512)
    a = ap.parse_args()
    cli = os.path.join(a.build, "app", "quantstudio-cli")
    sweep = [cli, "sensitivity", MODEL, "--data", DATA, "--bits", a.bits, "--limit", str(a.limit)]
    print(f"sharded sweep bench: demo CNN, bits {a.bits}, {a.limit} samples, {a.shards} shards, "
          f"median of {a.repeat}; {os.cpu_count()} cores on this machine")
    print(f"{'cpus':>4} {'local s':>8} {'slurm/1 s':>10} {'slurm/N s':>10} {'N/local':>8} "
          f"{'fixed s':>8} {'per-shard s':>12} {'shard sweep s':>14} equal")
    with tempfile.TemporaryDirectory() as tmp:
        for cpus in [int(c) for c in a.cpus.split(",")]:
            cluster = os.path.join(tmp, f"slurm{cpus}")
            r = subprocess.run(["bash", SCRIPT, "start", cluster, str(cpus)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise SystemExit(f"slurm_local.sh start: {r.stdout}")
            env = dict(os.environ, SLURM_CONF=os.path.join(cluster, "slurm.conf"),
                       OMP_NUM_THREADS=str(cpus), OMP_WAIT_POLICY="PASSIVE")
            try:
                local, one, many, shard_sweep, equal = [], [], [], [], True
                for k in range(a.repeat):
                    ldb = os.path.join(tmp, f"local{cpus}-{k}.db")
                    local.append(timed(sweep + ["--db", ldb], env)[0])
                    ref = rows(ldb)
                    for shards, times in ((1, one), (a.shards, many)):
                        db = os.path.join(tmp, f"slurm{cpus}-{shards}-{k}.db")
                        wall, out = timed(sweep + ["--slurm", "--shards", str(shards), "--cpus-per-task", "1",
                                                   "--db", db, "--json"], env)
                        times.append(wall)
                        equal &= rows(db) == ref
                        j = json.loads(out)
                        if shards == a.shards:
                            secs = [s["seconds"] for s in j["shards"]]
                            shard_sweep.append(statistics.mean(secs))
                lm, om, mm = statistics.median(local), statistics.median(one), statistics.median(many)
                print(f"{cpus:>4} {lm:>8.2f} {om:>10.2f} {mm:>10.2f} {mm / lm:>8.2f} {om - lm:>8.2f} "
                      f"{(mm * cpus - lm) / a.shards:>12.2f} {statistics.median(shard_sweep):>14.2f} "
                      f"{'yes' if equal else 'NO'}")
            finally:
                subprocess.run(["bash", SCRIPT, "stop", cluster])
    print("fixed: slurm/1 - local (submit, one shard process, polling at 1 s); per-shard: "
          "(slurm/N x cpus - local) / N, the CPU time each extra shard costs; shard sweep: "
          "a shard's own measured sweep time (metrics)")


if __name__ == "__main__":
    main()
