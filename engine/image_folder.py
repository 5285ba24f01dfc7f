"""A folder per class (torchvision's ``ImageFolder`` layout) as ``ImageData``.

``ROOT/<class>/`` or ``ROOT/train/<class>/`` and ``ROOT/test/<class>/``: the class names are
the folder names, the images are decoded (``engine.decode``) and cached as for a CSV +
folder (``engine.custom``), with which it shares the path checks and the split
(``engine.image_rows``). No torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.data import ImageData
from engine.fields import ALPHA_POLICIES, shown
from engine.identity import SPLIT_VERSION
from engine.image_rows import ImagePaths, Row, assemble, data_error, option_problems

__all__ = ["IMAGE_SUFFIXES", "load_image_folder"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def load_image_folder(
    root: str | Path,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    size: int = 28,
    resize: str = "resize",
    color: str = "grayscale",
    alpha: str = "auto",
    use_cache: bool = True,
    test_only: bool = False,
    split_version: int = SPLIT_VERSION,
) -> ImageData:
    """Load torchvision's ``ImageFolder`` layout as size x size uint8 grey images.

    ``ROOT/train/<class>/`` and ``ROOT/test/<class>/`` when ``ROOT/train`` holds class
    folders (without ``ROOT/test``, a seeded ``test_fraction`` of train is held out), else
    ``ROOT/<class>/`` split by ``test_fraction``. Class names are the folder names, sorted
    (class 0 first); images are found in a class folder and below it (PNG, JPEG, GIF, WebP;
    other files are counted in a note). ``resize``, ``color``, ``alpha`` and ``test_only``
    (the test split's images alone are checked and decoded) and ``split_version`` as for
    ``load_custom``.
    Raises one ``DataError`` listing every problem.
    """
    root_path = Path(root)
    problems = option_problems(test_fraction, size, resize, color, False)
    if alpha not in ALPHA_POLICIES:
        problems.append(f"alpha must be one of {', '.join(ALPHA_POLICIES)}, not {shown(alpha)}")
    folder = root_path.resolve()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        problems.append(f"image folder {root_path} {what}")
        raise data_error(root_path, problems)
    train_dir, test_dir = folder / "train", folder / "test"
    notes: list[str] = []
    if _class_dirs(train_dir):
        sides = [train_dir, test_dir] if _class_dirs(test_dir) else [train_dir]
        if len(sides) == 1:
            notes.append(f"no {test_dir.name}/ beside {train_dir}: test_fraction of it is held out")
    else:
        sides = [folder]
    by_side = {side: _class_dirs(side) for side in sides}
    classes = tuple(sorted({name for names in by_side.values() for name in names}))
    if not classes:
        loose = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        hint = f" (it holds {loose} images itself: for a CSV of labels use --data custom)"
        problems.append(
            f"image folder {root_path} holds no class folders; image-folder wants ROOT/<class>/ "
            f"or ROOT/train/<class>/ and ROOT/test/<class>/{hint if loose else ''}"
        )
        raise data_error(root_path, problems)
    number = {name: i for i, name in enumerate(classes)}
    paths = ImagePaths(folder)
    tables: list[list[Row]] = []
    ignored: dict[str, int] = {}
    counts: dict[str, int] = dict.fromkeys(classes, 0)
    for side in sides:
        rows: list[Row] = []
        for name in by_side[side]:
            for path in _images_below(side / name, ignored):
                shown_as = str(path.relative_to(folder))
                row = Row("image folder", 0, shown_as, str(number[name]))
                if test_only:  # only the test split's files are checked, in assemble
                    rows.append(row)
                    counts[name] += 1
                    continue
                try:
                    real = paths.find_inside(shown_as)
                except (OSError, ValueError) as exc:
                    problems.append(f"image {shown(shown_as)} is not a usable path ({exc})")
                    continue
                if real is None:
                    problems.append(f"image {shown(shown_as)} is a link to outside {folder}")
                    continue
                rows.append(row._replace(path=real))
                counts[name] += 1
        tables.append(rows)
        if len(sides) == 2:
            missing = [c for c in classes if c not in by_side[side]]
            if missing:
                notes.append(f"{side.name}/ has no folder for class " + ", ".join(missing))
    for name, count in counts.items():
        if count == 0:
            problems.append(
                f"class folder {name!r} holds no images ({', '.join(IMAGE_SUFFIXES)}); add "
                "images or remove the folder"
            )
    if ignored:
        listed = ", ".join(f"{suffix or 'no suffix'}: {n}" for suffix, n in sorted(ignored.items()))
        notes.append(f"{sum(ignored.values())} files that are not images skipped ({listed})")
    notes.insert(0, f"classes are the folder names, sorted: {', '.join(classes[:12])}")
    rows = [row for table in tables for row in table]
    return assemble(
        root_path,
        [],
        rows,
        [int(row.label) for row in rows],
        classes,
        train_rows=len(tables[0]) if len(tables) == 2 else None,
        folder_ok=True,
        options=(test_fraction, seed, size, resize, color, use_cache),
        problems=problems,
        notes=tuple(notes),
        alpha=alpha,
        test_only=test_only,
        paths=paths,
        split_version=split_version,
    )


def _class_dirs(folder: Path) -> list[str]:
    """The sorted names of the class folders in ``folder`` (hidden ones skipped)."""
    try:
        return sorted(
            entry.name
            for entry in os.scandir(folder)
            if entry.is_dir() and not entry.name.startswith(".")
        )
    except OSError:
        return []


def _images_below(folder: Path, ignored: dict[str, int]) -> list[Path]:
    """The image files in ``folder`` and its sub-folders, sorted; other files are counted
    in ``ignored`` by suffix (hidden files are skipped quietly)."""
    found = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            suffix = Path(name).suffix.lower()
            if suffix in IMAGE_SUFFIXES:
                found.append(Path(parent) / name)
            else:
                ignored[suffix] = ignored.get(suffix, 0) + 1
    return found
