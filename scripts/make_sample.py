"""Build the bundled Fashion-MNIST sample in ``assets/fashion-mnist-sample/`` from the full set.

A balanced, seeded draw of 200 training and 50 test images per class (2,000 + 500), written as
the four standard gzipped IDX files with a copy of the dataset's licence. The app falls back to
it when the full set is nowhere to be found.

Run from the repository root: ``python -m scripts.make_sample [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from engine.data import CLASSES, FILES, Split, load_fashion_mnist, read_idx, write_idx
from engine.errors import EngineError

OUTPUT = Path(__file__).resolve().parent.parent / "assets" / "fashion-mnist-sample"
TRAIN_PER_CLASS = 200
TEST_PER_CLASS = 50
SEED = 0
MAX_BYTES = 2_000_000

# Fashion-MNIST's own LICENSE file, as published by Zalando Research (re-wrapped).
LICENSE = """\
The MIT License (MIT) Copyright © 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the “Software”), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of
the Software, and to permit persons to whom the Software is furnished to do so,
subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED “AS IS”, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS
FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR
COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER
IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
"""

README = f"""\
# Fashion-MNIST sample

A small, class-balanced sample of [Fashion-MNIST](https://github.com/zalandoresearch/fashion-mnist)
by Zalando Research: {TRAIN_PER_CLASS} training and {TEST_PER_CLASS} test images for each of
the 10 classes ({TRAIN_PER_CLASS * 10:,} + {TEST_PER_CLASS * 10:,} images, 28x28 grey), in
the dataset's own gzipped IDX format.

fmnist-tui falls back to it only when the full set is nowhere to be found, and marks it as the
sample: a model trained on it is a smoke test, not a benchmark. For the full 60,000 + 10,000
images, run `apt-get install dataset-fashion-mnist` or let torchvision download them.

Fashion-MNIST is Copyright (c) 2017 Zalando SE and is distributed under the MIT licence; see
`LICENSE` in this folder.

## How it was made

From the full set (Debian's `dataset-fashion-mnist`), at the repository root:

```
python -m scripts.make_sample
```

The script draws the images per class with a seeded generator (seed {SEED}), keeps them in their
original order, and checks that the result reads back and stays under 2 MB.
"""


def balanced_sample(split: Split, per_class: int, rng: np.random.Generator) -> Split:
    """``per_class`` images of every class, drawn without replacement, in their original order."""
    chosen = [
        rng.choice(np.flatnonzero(split.labels == label), size=per_class, replace=False)
        for label in range(len(CLASSES))
    ]
    return split.take(np.sort(np.concatenate(chosen)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help="folder holding the full Fashion-MNIST IDX files")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="folder to write")
    args = parser.parse_args(argv)

    try:
        data = load_fashion_mnist(args.data_dir, download=False)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if data.source.is_sample:
        print("error: only the bundled sample was found; the full set is needed", file=sys.stderr)
        return 2

    rng = np.random.default_rng(SEED)
    train = balanced_sample(data.train, TRAIN_PER_CLASS, rng)
    test = balanced_sample(data.test, TEST_PER_CLASS, rng)

    args.output.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": train.images,
        "train_labels": train.labels,
        "test_images": test.images,
        "test_labels": test.labels,
    }
    for key, array in arrays.items():
        path = args.output / (FILES[key] + ".gz")
        write_idx(path, array)
        if not np.array_equal(read_idx(path), array):
            print(f"error: {path} does not read back as written", file=sys.stderr)
            return 1
    (args.output / "LICENSE").write_text(LICENSE, encoding="utf-8")
    (args.output / "README.md").write_text(README, encoding="utf-8")

    total = sum(path.stat().st_size for path in args.output.iterdir())
    print(f"{args.output}: {len(train):,} train + {len(test):,} test images, {total:,} bytes")
    print(f"drawn from {data.source.describe()}")
    if total > MAX_BYTES:
        print(f"error: the sample is over {MAX_BYTES:,} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
