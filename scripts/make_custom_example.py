"""Build ``assets/custom-example/``: a tiny CSV + image-folder dataset in the notes' format.

Forty PNGs drawn from the Fashion-MNIST test set, four per class, with ``labels.csv``
(``filename,label`` with a header) and ``classes.txt``. A few images are saved in colour and a
few upscaled to 32x32, so loading the example shows both conversions at work. The PNGs are
written with ``torchvision.io``, so PIL is not needed.

Run from the repository root: ``python -m scripts.make_custom_example [--data-dir DIR]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from torchvision.io import write_png

from engine.custom import load_custom
from engine.data import CLASSES, load_fashion_mnist
from engine.errors import EngineError

OUTPUT = Path(__file__).resolve().parent.parent / "assets" / "custom-example"
PER_CLASS = 4
SEED = 0
# Of each run of eight images, one is tinted and one upscaled: five of each in all.
TINTED, UPSCALED = 3, 6
TINT = (1.0, 0.8, 0.55)  # a warm brown, so the colour is real, not three equal channels
UPSCALED_SIZE = 32
TRAIN_COMMAND = (
    "fmnist-tui train --data custom --custom-csv assets/custom-example/labels.csv "
    "--custom-images assets/custom-example/images"
)

README = f"""\
# Custom dataset example

A tiny dataset in the format of the PyTorch notes' `CustomImageDataset`: an image folder
plus a CSV of `filename,label` rows. Its {PER_CLASS * len(CLASSES)} images are Fashion-MNIST test
images, {PER_CLASS} per class (Fashion-MNIST is Copyright (c) 2017 Zalando SE, MIT licence:
see `../fashion-mnist-sample/LICENSE`).

```
labels.csv     filename,label rows; the header row is optional
classes.txt    one class name per line: line 1 names label 0
images/        the PNG files; the CSV names them relative to this folder
```

Train on it with:

```
{TRAIN_COMMAND}
```

or from Python:

```python
from engine.custom import load_custom

data = load_custom(
    "assets/custom-example/labels.csv",
    "assets/custom-example/images",
    classes_file="assets/custom-example/classes.txt",
)
print(data.notes)
```

Five images are saved in colour and five are 32x32, so the loader reports what it converted:
colour images become grayscale (`color="grayscale"`; `"reject"` makes them an error) and
other sizes are resized to 28x28 (`resize="resize"`; `"pad"` centre-pads or crops, `"reject"`
makes them an error). Without a separate test CSV, a seeded 20% of the rows is held out for
testing.

Made by `python -m scripts.make_custom_example` at the repository root.
"""


def slug(name: str) -> str:
    """A file-name-friendly class name: "T-shirt/top" -> "t-shirt-top"."""
    return name.lower().replace("/", "-").replace(" ", "-")


def as_png_tensor(image: np.ndarray, number: int) -> torch.Tensor:
    """One 28x28 grey image as the C x H x W uint8 tensor to save, tinted or upscaled by turn."""
    grey = torch.from_numpy(image)[None]
    if number % 8 == TINTED:
        tint = torch.tensor(TINT)[:, None, None]
        return (grey.float() * tint).round().to(torch.uint8)
    if number % 8 == UPSCALED:
        big = torch.nn.functional.interpolate(
            grey[None].float(), size=(UPSCALED_SIZE, UPSCALED_SIZE), mode="bilinear"
        )
        return big[0].round().clamp(0, 255).to(torch.uint8)
    return grey


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help="folder holding the Fashion-MNIST IDX files")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="folder to write")
    args = parser.parse_args(argv)

    try:
        test = load_fashion_mnist(args.data_dir, download=False).test
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    rng = np.random.default_rng(SEED)
    chosen = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(test.labels == label), size=PER_CLASS, replace=False)
                for label in range(len(CLASSES))
            ]
        )
    )

    images_dir = args.output / "images"
    # Start clean so that a file from an earlier run cannot linger unlisted.
    shutil.rmtree(images_dir, ignore_errors=True)
    images_dir.mkdir(parents=True)
    rows = ["filename,label"]
    seen: dict[int, int] = {}
    for number, index in enumerate(chosen):
        label = int(test.labels[index])
        seen[label] = seen.get(label, 0) + 1
        filename = f"{slug(CLASSES[label])}-{seen[label]}.png"
        write_png(as_png_tensor(test.images[index], number), str(images_dir / filename))
        rows.append(f"{filename},{label}")
    (args.output / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (args.output / "classes.txt").write_text("\n".join(CLASSES) + "\n", encoding="utf-8")
    (args.output / "README.md").write_text(README, encoding="utf-8")

    data = load_custom(
        args.output / "labels.csv",
        images_dir,
        classes_file=args.output / "classes.txt",
        use_cache=False,
    )
    print(
        f"{args.output}: {len(chosen)} images; loads as {len(data.train)} train + "
        f"{len(data.test)} test"
    )
    for note in data.notes:
        print(f"  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
