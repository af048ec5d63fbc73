#!/usr/bin/env python3
"""Runs textwatch and its peers on one stream, measures each as a separate
process (wall time, peak RSS), scores each with `textwatch eval`, and prints
one table. Called by bench/peers.sh."""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def peak_rss_mib(cmd):
    """Runs cmd in a child python that reports the child's ru_maxrss."""
    code = (
        "import resource,subprocess,sys,time,json;"
        "t=time.perf_counter();r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL);"
        "e=time.perf_counter()-t;"
        "print(json.dumps({'rc':r.returncode,'s':e,'rss':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
    )
    out = subprocess.run([sys.executable, "-c", code] + cmd, stdout=subprocess.PIPE, check=True).stdout
    v = json.loads(out)
    if v["rc"] != 0:
        sys.exit(f"{' '.join(cmd)} failed with exit code {v['rc']}")
    return v["s"], v["rss"] / 1024.0


def evaluate(bin_, work, predictions=None, db=None):
    cmd = [bin_]
    if db:
        cmd += ["--db", db]
    cmd += ["eval", "--truth", os.path.join(work, "truth.jsonl"), "--format", "json"]
    if predictions:
        cmd += ["--predictions", predictions]
    r = json.loads(subprocess.run(cmd, stdout=subprocess.PIPE, check=True).stdout)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--peers", nargs="*", default=["datasketch", "rensa"])
    ap.add_argument("--json")
    a = ap.parse_args()
    stream = os.path.join(a.work, "stream.jsonl")
    n = sum(1 for _ in open(stream, encoding="utf-8"))
    rows = []

    db = os.path.join(a.work, "bench.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    secs, rss = peak_rss_mib([a.bin, "--db", db, "scan", "-q", stream])
    r = evaluate(a.bin, a.work, db=db)
    rows.append(("textwatch scan (to disk)", secs, rss, r))

    for tool in a.peers:
        pred = os.path.join(a.work, f"{tool}.predictions.jsonl")
        secs, rss = peak_rss_mib([sys.executable, os.path.join(HERE, "peers.py"), "--tool", tool, "--input", stream, "--predictions", pred])
        r = evaluate(a.bin, a.work, predictions=pred)
        rows.append((f"{tool} MinHash(128)+LSH", secs, rss, r))

    print(f"\n{n:,} messages, {os.path.basename(a.work)}")
    print(f"{'tool':<30} {'msgs/s':>12} {'peak RSS':>10} {'B3 F1 all':>10} {'B3 F1 campaigns':>16} {'split':>6} {'merged':>7}")
    results = []
    for name, secs, rss, r in rows:
        rate = n / secs
        print(
            f"{name:<30} {rate:>12,.0f} {rss:>8,.0f}MB {r['bcubed']['f1']:>10.4f} "
            f"{r['bcubed_campaign_messages']['f1']:>16.4f} {r['split']:>6} {r['merged']:>7}"
        )
        results.append({"tool": name, "messages": n, "seconds": secs, "messages_per_s": rate, "peak_rss_mib": rss,
                        "bcubed_f1": r["bcubed"]["f1"], "bcubed_f1_campaigns": r["bcubed_campaign_messages"]["f1"],
                        "split": r["split"], "merged": r["merged"]})
    if len(rows) > 1:
        tw = results[0]
        best = max(results[1:], key=lambda x: x["messages_per_s"])
        best_f1 = max(results[1:], key=lambda x: x["bcubed_f1"])
        print(f"\ntextwatch / fastest peer ({best['tool']}): {tw['messages_per_s'] / best['messages_per_s']:.1f}x messages/s; "
              f"F1 {tw['bcubed_f1']:.4f} vs best peer F1 {best_f1['bcubed_f1']:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
