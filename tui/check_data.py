"""``fmnist-tui check-data [data flags]``: the dataset check a run makes before it trains.

It loads the data the flags (or ``--config``/``--preset``) name, as ``train`` would, and
prints what ``engine.check`` finds: fewer than two classes (refused: exit 2), classes
with no images in a split, duplicate images, conflicting labels, test images copied from
training, and the loader's notes. The result is cached by the data's identity. For
Fashion-MNIST's IDX files and csv-pixels data neither torch nor torchvision is imported.
"""

from __future__ import annotations

import argparse
import json
import time

from engine.errors import DataError
from tui.flags import EXIT_OK, config_from_args
from tui.output import printable


def cmd_check_data(args: argparse.Namespace) -> int:
    """Check the data ``args`` name; print the findings (``--json``: one object).

    Returns 0 when the data can be trained on; raises ``DataError`` (exit 2, one line)
    when it cannot, after printing the findings.
    """
    from engine.check import check_data
    from engine.identity import data_identity
    from engine.trainer import load_data

    config = config_from_args(args)
    data = load_data(config)
    started = time.perf_counter()
    identity = data_identity(config, data)
    check = check_data(data, identity)
    seconds = time.perf_counter() - started
    val = getattr(data, "val", None)
    if args.json:
        report = {
            "source": data.source.describe(),
            "train": len(data.train),
            "val": len(val) if val is not None else 0,
            "test": len(data.test),
            "image_shape": list(data.image_shape),
            "classes": list(data.classes),
            "usable": not check.refusal,
            "findings": check.findings(),
            **check.to_dict(),
            "cached": check.cached,
            "check_seconds": round(seconds, 4),
            "identity": identity,
        }
        print(json.dumps(report))
    else:
        height, width = data.image_shape
        sizes = f"{len(data.train):,} train"
        if val is not None:
            sizes += f", {len(val):,} validation"
        sizes += f", {len(data.test):,} test"
        lines = [
            f"data: {data.source.describe()}",
            f"images: {sizes}; {width}x{height} pixels; {data.num_classes} classes",
            *(f"check: {line}" for line in check.findings()),
            f"checked in {seconds:.2f} s"
            + (" (cached: the data is unchanged)" if check.cached else ""),
        ]
        for line in lines:
            print(printable(line))
    if check.refusal:
        raise DataError(check.refusal)
    return EXIT_OK
