"""``HelpScreen``: every key of the app, by pane."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# fmnist-tui

Look at the data, set the hyperparameters, train and watch, all by keyboard.

## Everywhere
| key | does |
|---|---|
| `1` `2` `3` | Data, Hyperparameters, Monitor pane |
| `s` | start training with the form's settings |
| `p` | pause or resume the run |
| `x` | stop the run (saves a resumable checkpoint) |
| `?` | this help |
| `ctrl+p` | command palette: every action by name |
| `q`, `ctrl+q` | quit (asks first while training) |

## Data
| key | does |
|---|---|
| arrows | select an image |
| `z`, `enter` | zoom the selected image |
| `r` | reshuffle the samples |
| `n` `b` | next and previous page |
| `f`, `F` | filter by the next, previous class |
| `t` | switch between train and test split |
| `a` | preview the training augmentation (flip and crop) |

## Hyperparameters
| key | does |
|---|---|
| `tab`, `shift+tab` | move between fields |
| `escape` | leave a field (so the keys above work again) |
| `ctrl+s`, `ctrl+o` | save, load a config file (JSON or TOML) |

A bad value shows the reason under its field; Start waits until it is fixed.
The model summary follows the form.

## Monitor
Progress, throughput, live loss and accuracy charts, per-class accuracy, the
confusion matrix (true class down, predicted across) and the run's events.
Runs are saved under the runs folder; a stopped run can be resumed.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Markdown(HELP)
