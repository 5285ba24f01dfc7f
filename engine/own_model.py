"""A model from the user's own code: ``--model package.module:factory`` or
``--model path/to/file.py:factory``.

The factory is called as ``factory(image_shape=(C, H, W), num_classes=K)`` and returns a
``torch.nn.Module`` that takes float N x C x H x W images and gives float N x K logits.

Importing the factory runs the user's code, so it happens only when the caller names the
same reference again (``model_factory``, the ``--model`` flag): a config file, a search's
TOML or a run's ``config.json`` that names a factory is never imported from on its own
(``require_trust``). A run records the reference and the SHA-256 of its file in
``RUN/model_source.json`` (``record_source``); a later import whose file differs is said
(``source_note``), not refused: the user asked for their code as it is now, and weights
that no longer fit are refused when they load.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import files
from engine.errors import ModelError
from engine.fields import absolute_model_reference, clip, is_model_reference, shown

if TYPE_CHECKING:
    from torch import nn

# The file in a run folder that records the factory's reference and its file's hash.
SOURCE_FILE = "model_source.json"

# Modules loaded from a .py file, by (absolute path, sha256): a file is run once per
# content, however many models the app's summary builds from it.
_loaded: dict[tuple[str, str], Any] = {}


@dataclass(frozen=True)
class ModelSource:
    """Where a factory's code is: its ``reference`` as given (a file reference with an
    absolute path), the absolute path of the Python ``file`` that holds it, and that
    file's ``sha256`` (hex)."""

    reference: str
    file: str
    sha256: str

    def to_dict(self) -> dict[str, str]:
        """The fields by name, as ``model_source.json`` holds them."""
        return {"reference": self.reference, "file": self.file, "sha256": self.sha256}


def same_reference(a: str, b: str) -> bool:
    """Whether two references name the same factory (a file's path compared absolutely)."""
    return absolute_model_reference(a) == absolute_model_reference(b)


def require_trust(reference: str, model_factory: str | None, subject: str) -> None:
    """Raise ``ModelError`` unless ``model_factory`` names ``reference``'s factory.

    ``subject`` opens the message: ``run ID trains`` or ``the settings name``; it goes on
    ``a model from your code (REF); pass --model REF to import it``.
    """
    if model_factory is not None and same_reference(reference, model_factory):
        return
    got = f" (got --model {shown(model_factory)})" if model_factory else ""
    raise ModelError(
        f"{subject} a model from your code ({reference}); pass --model {reference} to "
        f"import it{got}"
    )


def locate(reference: str) -> ModelSource:
    """The file that holds ``reference``'s factory and its SHA-256, without importing it.

    For ``package.module:factory`` the module is found with ``importlib.util.find_spec``,
    which imports its parent packages (not the module). Raises ``ModelError`` when the
    reference is malformed or its file cannot be found or read.
    """
    if not is_model_reference(reference):
        raise ModelError(
            f"model {shown(reference)} is not a factory reference; expected "
            "package.module:factory or path/to/file.py:factory"
        )
    target, _, _name = reference.rpartition(":")
    if target.endswith(".py"):
        path = os.path.abspath(os.path.expanduser(target))
        if not os.path.isfile(path):
            raise ModelError(f"model {reference}: there is no file {path}")
    else:
        try:
            spec = importlib.util.find_spec(target)
        except Exception as exc:  # a parent package that fails to import, or is not one
            raise ModelError(
                f"model {reference}: cannot find module {target} ({_why(exc)})"
            ) from None
        if spec is None:
            raise ModelError(
                f"model {reference}: there is no module {target} on the Python path "
                "(sys.path, PYTHONPATH)"
            )
        if not spec.origin or not os.path.isfile(spec.origin):
            raise ModelError(f"model {reference}: module {target} has no Python file")
        path = os.path.abspath(spec.origin)
    try:
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise ModelError(f"model {reference}: cannot read {path} ({exc.strerror or exc})") from None
    return ModelSource(absolute_model_reference(reference), path, digest)


def load_factory(reference: str) -> Callable[..., Any]:
    """Import ``reference``'s module (running the user's code) and return its factory.

    Raises ``ModelError`` when the file or module cannot be found or imported, or has no
    callable of that name.
    """
    source = locate(reference)
    target, _, name = reference.rpartition(":")
    try:
        if target.endswith(".py"):
            module = _loaded.get((source.file, source.sha256))
            if module is None:
                module = _import_file(source)
                _loaded[(source.file, source.sha256)] = module
        else:
            module = importlib.import_module(target)
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"model {reference}: importing {source.file} failed ({_why(exc)})"
        ) from None
    factory = getattr(module, name, None)
    if factory is None:
        raise ModelError(f"model {reference}: {source.file} defines no {name}")
    if not callable(factory):
        raise ModelError(
            f"model {reference}: {name} in {source.file} is not a function (its type is "
            f"{type(factory).__name__})"
        )
    return factory  # type: ignore[no-any-return]


def _import_file(source: ModelSource) -> Any:
    stem = Path(source.file).stem
    module_name = f"fmnist_own_model_{source.sha256[:12]}_{stem}".replace("-", "_")
    spec = importlib.util.spec_from_file_location(module_name, source.file)
    if spec is None or spec.loader is None:
        raise ModelError(f"model {source.reference}: {source.file} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def build_module(reference: str, image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The module ``factory(image_shape=(C, H, W), num_classes=K)`` returns, checked.

    The check runs it once, in eval mode and without gradients, on float 2 x C x H x W
    zeros on the default device (``meta`` under ``torch.device("meta")``): it must give
    a float 2 x K tensor. The module is returned in training mode. Raises ``ModelError``
    when the factory cannot be imported, raises, returns something other than an
    ``nn.Module``, or the module's forward raises or gives another shape.
    """
    import torch
    from torch import nn

    factory = load_factory(reference)
    channels, height, width = image_shape
    try:
        model = factory(image_shape=(channels, height, width), num_classes=num_classes)
    except Exception as exc:
        raise ModelError(f"model {reference}: the factory raised {_why(exc)}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"model {reference}: the factory returned {_what(model)}, not a torch.nn.Module"
        )
    wanted = f"2 x {num_classes}"
    given = f"float 2 x {channels} x {height} x {width} input"
    model.eval()
    try:
        with torch.no_grad():
            output = model(torch.zeros(2, channels, height, width))
    except Exception as exc:
        raise ModelError(f"model {reference}: its forward on {given} raised {_why(exc)}") from None
    finally:
        model.train()
    if not isinstance(output, torch.Tensor):
        raise ModelError(
            f"model {reference}: its forward on {given} gave {_what(output)}; "
            f"expected a tensor of {wanted} logits (N x num_classes)"
        )
    if tuple(output.shape) != (2, num_classes) or not output.is_floating_point():
        shape = " x ".join(map(str, output.shape)) or "a scalar"
        raise ModelError(
            f"model {reference}: its forward on {given} gave {output.dtype} {shape}; "
            f"expected float {wanted} logits (N x num_classes)"
        )
    return model


def record_source(run_dir: Path, source: ModelSource, *, epoch: int | None = None) -> None:
    """Write ``RUN/model_source.json`` (atomically): ``source``'s reference, file and
    SHA-256, and, when a resume found the file changed, the earlier hashes in
    ``changes`` (``{"sha256": ..., "until_epoch": E, "time": ...}``). Raises ``OSError``."""
    recorded = read_source(run_dir) or {}
    changes = recorded.get("changes")
    changes = list(changes) if isinstance(changes, list) else []
    before = recorded.get("sha256")
    if isinstance(before, str) and before != source.sha256:
        changes.append({"sha256": before, "until_epoch": epoch, "time": time.time()})
    record: dict[str, Any] = source.to_dict()
    if changes:
        record["changes"] = changes
    files.atomic_write(run_dir / SOURCE_FILE, (json.dumps(record, indent=2) + "\n").encode())


def read_source(run_dir: Path) -> dict[str, Any] | None:
    """``RUN/model_source.json`` as a dict; None when missing, unreadable or not an object
    (a run folder's files may be damaged: nothing here is imported or run)."""
    try:
        record = json.loads(files.read_bytes(run_dir / SOURCE_FILE))
    except (OSError, ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def source_change(run_dir: Path, run_id: str, source: ModelSource) -> str:
    """How ``source``'s file differs from the one run ``run_id`` recorded: ``nets.py
    changed since run ID recorded it (sha256 3f2a… then, 9c1d… now)``, or that the run
    recorded no SHA-256; "" when it is the same file. Weights that do not fit the model
    the factory builds are most likely due to such a change: their message repeats it."""
    recorded = read_source(run_dir) or {}
    before = recorded.get("sha256")
    if before == source.sha256:
        return ""
    if not isinstance(before, str):
        return (
            f"run {run_id} recorded no SHA-256 of {source.file} ({SOURCE_FILE} is missing "
            "or unreadable)"
        )
    return (
        f"{source.file} changed since run {run_id} recorded it (sha256 {before[:12]}… then, "
        f"{source.sha256[:12]}… now)"
    )


def source_note(run_dir: Path, run_id: str, source: ModelSource) -> str:
    """What to tell the user when ``source``'s file is not the one run ``run_id`` recorded
    (``source_change`` and what follows from it); "" when it is the same."""
    change = source_change(run_dir, run_id, source)
    return f"{change}; its weights are loaded into the model the file builds now" if change else ""


def _what(value: object) -> str:
    """``value`` named by its type and shown (``int 42``, ``str 'a string'``; ``None``),
    for a message: no article to get wrong, whatever the type's name."""
    if value is None:
        return "None"
    try:
        text = clip(shown(value), 80)  # one line: a tensor's repr has several
    except Exception:  # the user's __repr__ may raise
        return type(value).__name__
    return f"{type(value).__name__} {text}"


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {clip(str(exc))}" if str(exc) else type(exc).__name__
