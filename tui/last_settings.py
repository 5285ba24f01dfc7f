"""The form's last settings: saved when a run starts and when the app quits (the form
valid), restored at the next launch.

They live in ``$XDG_CONFIG_HOME/fmnist-tui/last-settings.json`` (``~/.config`` when the
variable is unset or not an absolute path), written atomically (``engine.files``), with
the paths made absolute so that a launch from another folder finds the same files. At
launch the order is: defaults, then the last settings, then ``--preset`` / ``--config``,
then flags (``startup_config``). A file that cannot be read, or no longer makes a valid
config, is named and left aside; a restored path that no longer exists is named and
goes back to its default, never used silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine import files
from engine.config import ABSOLUTE_PATH_FIELDS, FIELDS, TrainConfig, preset
from engine.errors import ConfigError
from engine.fields import is_model_reference

APP_FOLDER = "fmnist-tui"
FILE_NAME = "last-settings.json"
# The settings that name a file or folder: each restored one must still exist.
PATH_FIELDS = (*ABSOLUTE_PATH_FIELDS, "runs_dir")
# A preset sets how to train, never where: these groups keep the values already set.
KEPT_BY_PRESETS = ("system", "data")
# The note that says the form starts from the last run's settings (not a problem).
RESTORED_NOTE = "Restored the last run's settings (ctrl+r on Hyperparameters: defaults)"


def settings_path() -> Path:
    """Where the last settings are kept: ``$XDG_CONFIG_HOME/fmnist-tui/last-settings.json``,
    or under ``~/.config`` when ``XDG_CONFIG_HOME`` is unset, empty or relative (as the
    XDG spec says to treat it)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / APP_FOLDER / FILE_NAME


def save_last_settings(config: TrainConfig, path: Path | None = None) -> Path:
    """Write ``config`` (paths made absolute) as the settings the next launch restores;
    returns the file written. Folders are made as needed. Raises ``OSError``."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"settings": config.with_absolute_paths().to_dict()}
    files.atomic_write(path, (json.dumps(data, indent=2) + "\n").encode())
    return path


def with_preset(name: str, current: TrainConfig) -> TrainConfig:
    """Preset ``name`` applied to defaults, keeping ``current``'s system and data fields."""
    kept = {k: v for k, v in current.to_dict().items() if FIELDS[k].group in KEPT_BY_PRESETS}
    return TrainConfig.from_dict(kept, base=preset(name))


def _missing(name: str, value: object) -> str | None:
    """The path field ``name``'s ``value`` names when that no longer exists, else None."""
    if not isinstance(value, str) or not value or value == FIELDS[name].default:
        return None
    if name == "model":
        if not is_model_reference(value):
            return None
        file = value.rpartition(":")[0]
        if not file.endswith(".py"):
            return None
        value = file
    return None if os.path.exists(os.path.expanduser(value)) else value


def read_last_settings(path: Path | None = None) -> tuple[TrainConfig | None, list[str]]:
    """The last settings saved, and notes for the user: (None, []) when there are none;
    (None, [why]) when the file cannot be read or is not valid settings; otherwise the
    config, with each path that no longer exists set back to its default and named in
    a note. Never raises."""
    path = path or settings_path()
    where = f"Last settings ({path})"
    try:
        text = files.read_text(path)
    except FileNotFoundError:
        return None, []
    except OSError as exc:
        return None, [f"{where} ignored: cannot read it: {exc.strerror or exc}"]
    except UnicodeDecodeError:
        return None, [f"{where} ignored: not UTF-8 text"]
    try:
        data = json.loads(text)
        values = data["settings"]
        config = TrainConfig.from_dict(values)
    except json.JSONDecodeError as exc:
        return None, [f"{where} ignored: not valid JSON ({exc})"]
    except (KeyError, TypeError):
        return None, [f"{where} ignored: expected a JSON object with a 'settings' table"]
    except ConfigError as exc:
        return None, [f"{where} ignored: " + "; ".join(exc.problems[:3])]
    notes = []
    reset = {}
    for name in (*PATH_FIELDS, "model"):
        gone = _missing(name, getattr(config, name))
        if gone is not None:
            reset[name] = FIELDS[name].default
            notes.append(f"{name}: {gone} no longer exists; back to the default")
    if reset:
        try:
            config = TrainConfig.from_dict(reset, base=config)
        except ConfigError as exc:
            return None, [f"{where} ignored: " + "; ".join([*notes, *exc.problems][:4])]
        notes = [f"{where}: " + "; ".join(notes)]
    return config, notes


def startup_config(
    preset_name: str | None, path: Path | None = None
) -> tuple[TrainConfig, list[str]]:
    """The config the app starts from before ``--config`` and flags: the last settings
    (or the defaults), with ``preset_name``'s training settings over them when given;
    and notes for the user: ``RESTORED_NOTE`` first when the last settings were restored,
    then those ``read_last_settings`` gave."""
    config, notes = read_last_settings(path)
    if config is not None:
        notes = [RESTORED_NOTE, *notes]
    base = config or TrainConfig()
    if preset_name:
        base = with_preset(preset_name, base)
    return base, notes
