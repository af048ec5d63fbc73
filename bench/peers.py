#!/usr/bin/env python3
"""Campaign grouping the way people do it today with MinHash LSH libraries.

For each message in a scan-format JSONL stream: MinHash(128) of the
lowercased body's character 5-gram shingles, then query a MinHashLSH index
(threshold 0.5); join the cluster of the first result, or start a new
cluster; insert the message. This is the common "query, then insert"
recipe from the datasketch documentation, run with datasketch or rensa.

Writes predictions as JSONL ({"id", "campaign"}, campaign null for
singletons) for `textwatch eval --predictions`, and prints one JSON line of
timing to standard output.
"""

import argparse
import json
import sys
import time


def shingles(text, k=5):
    t = " ".join(text.lower().split())
    if len(t) <= k:
        return {t}
    return {t[i : i + k] for i in range(len(t) - k + 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", choices=["datasketch", "rensa"], required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--predictions", required=True)
    ap.add_argument("--perm", type=int, default=128)
    ap.add_argument("--threshold", type=float, default=0.5)
    args = ap.parse_args()

    if args.tool == "datasketch":
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=args.threshold, num_perm=args.perm)

        def signature(sh):
            m = MinHash(num_perm=args.perm)
            m.update_batch([s.encode("utf-8") for s in sh])
            return m

    else:
        from rensa import RMinHash, RMinHashLSH

        bands = 16 if args.perm % 16 == 0 else 8
        lsh = RMinHashLSH(threshold=args.threshold, num_perm=args.perm, num_bands=bands)

        def signature(sh):
            m = RMinHash(num_perm=args.perm, seed=42)
            m.update(list(sh))
            return m

    cluster_of = {}
    sizes = {}
    order = []
    start = time.perf_counter()
    n = 0
    with open(args.input, encoding="utf-8") as f:
        for i, line in enumerate(f):
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            mid = rec.get("id") or f"line-{i + 1}"
            sig = signature(shingles(rec.get("body", "")))
            hits = lsh.query(sig)
            if hits:
                first = min(hits) if args.tool == "rensa" else sorted(hits)[0]
                c = cluster_of[first]
            else:
                c = n
            key = n if args.tool == "rensa" else str(n)
            lsh.insert(key, sig)
            cluster_of[key] = c
            sizes[c] = sizes.get(c, 0) + 1
            order.append((mid, c))
            n += 1
    elapsed = time.perf_counter() - start
    with open(args.predictions, "w", encoding="utf-8") as out:
        for mid, c in order:
            camp = f"c{c}" if sizes[c] >= 2 else None
            out.write(json.dumps({"id": mid, "campaign": camp}) + "\n")
    print(json.dumps({"tool": args.tool, "messages": n, "seconds": elapsed}))


if __name__ == "__main__":
    sys.exit(main())
