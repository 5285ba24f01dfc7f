"""The Search pane: a study's trials as they run, its charts, and what to do with them.

While the pane is shown, the study is read at most once every ``REFRESH_SECONDS`` in a
thread worker (``engine.search.study_rows``: the journal or the database is I/O, and
Optuna is imported there, never on the UI thread); a read still under way when the
next is due is not doubled. The table, the detail line and the charts then repaint
only what changed.

At 80 columns one chart shows at a time, ``v`` cycling through the best-so-far curve,
accuracy against each searched parameter and the parameters' importance; from
``WIDE`` columns the curve stays on the left and ``v`` cycles the right one.

Starting a search (``n``) asks the app for the form's config and search space (the
app calls ``new_search``), asks for the flags in ``SearchPrompt`` and starts the
search in the background (``engine.search.spawn_search``): it outlives the app, and
``fmnist-tui attach --study NAME`` watches it again. Opening a trial's run and
training the best configuration are the app's to do: the pane asks by message.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.events import Resize
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Static
from textual.worker import get_current_worker

from engine.config import TrainConfig
from engine.errors import EngineError
from engine.fields import epochs_text
from engine.search_space import SearchSpace
from tui.plain import markup
from tui.screens.confirm import ConfirmScreen
from tui.screens.pane import WIDE, Pane
from tui.widgets.class_bars import ClassBars
from tui.widgets.search_charts import TrialsPlot
from tui.widgets.search_dialogs import SearchChoice, SearchPrompt, StudyPicker, TrainBestPrompt
from tui.widgets.search_table import (
    TrialsTable,
    accuracy_text,
    best_trial,
    param_text,
    trial_detail,
)

if TYPE_CHECKING:
    from engine.search import TrialRow

REFRESH_SECONDS = 1.0
# Fewer complete trials than this give importances that are noise: none are shown.
MIN_IMPORTANCE_TRIALS = 6
STATE_ORDER = ("running", "waiting", "complete", "pruned", "failed")
HINT = (
    "n starts a search over the Hyperparameters pane's settings, in the background: "
    "it goes on after the app quits, and `fmnist-tui attach --study NAME` comes back "
    "to it. Mark the fields to search in the Hyperparameters pane (2, ctrl+t on a "
    "field); with none marked, the default space is searched. `fmnist-tui search` "
    "starts one from the shell."
)


@dataclass(frozen=True)
class Reading:
    """One read of the runs folder's studies and the watched study (from the worker)."""

    studies: list[tuple[str, float]]  # (name, journal modification time), newest first
    study: str | None
    rows: list[TrialRow]
    space: SearchSpace | None = None  # read once per study
    trial_epochs: int | None = None  # each trial's length (read with the space)
    pid: int | None = None  # the process searching the study on this host now
    last_line: str = ""  # the study's log's last line, when no process searches it
    importance: dict[str, float] | None = None  # None: not computed on this read
    importance_note: str = ""  # why there are none (too few trials, a failure)
    importance_of: tuple[str, int] | None = None  # (study, complete trials) it is for
    problem: str = ""


def study_about(mtime: float) -> str:
    """What the picker shows beside a study: when its journal last changed."""
    if not mtime:
        return ""
    return "changed " + dt.datetime.fromtimestamp(mtime).strftime("%m-%d %H:%M")


def default_study_name() -> str:
    return "search-" + time.strftime("%Y%m%d-%H%M%S")


def _last_line(path: Path) -> str:
    from engine import files

    try:
        text = files.read_text(path, files.SMALL_FILE_LIMIT)
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class SearchPane(Pane):
    """A study's trials: watch them, start a search, open a trial, train the best."""

    # The pane takes the keys itself while it has no table to show (no study yet).
    can_focus = True
    DEFAULT_FOCUS = "#search-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new_search", "New search"),
        Binding("o", "open_trial", "Open trial"),
        Binding("b", "train_best", "Train best"),
        Binding("v", "next_view(1)", "View"),
        Binding("V", "next_view(-1)", "Previous view", show=False),
        Binding("l", "pick_study", "Studies"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("X", "stop_search", "Stop search", show=False),
    ]

    # --- messages: from the workers (to this pane), and to the app --------------------

    @dataclass
    class Read(Message):
        bubble: ClassVar[bool] = False
        reading: Reading

    @dataclass
    class Spawned(Message):
        bubble: ClassVar[bool] = False
        study: str
        pid: int

    @dataclass
    class NotDone(Message):
        bubble: ClassVar[bool] = False
        title: str
        text: str

    @dataclass
    class BestFound(Message):
        bubble: ClassVar[bool] = False
        study: str
        config: TrainConfig

    @dataclass
    class SearchRequested(Message):
        """Start a search: the app answers with ``new_search(config, space)``."""

    @dataclass
    class OpenRequested(Message):
        """Show a trial's run: the Monitor attaches to it while it trains, else the Runs
        pane opens it."""

        path: Path

    @dataclass
    class TrainRequested(Message):
        """Train ``config`` (a study's best) as an ordinary run in the Monitor."""

        config: TrainConfig
        note: str

    runs_dir: reactive[str] = reactive("runs", init=False)
    """The folder whose studies are listed: the app passes on the form's ``runs_dir``."""

    # --- layout ---------------------------------------------------------------------

    def __init__(
        self,
        *,
        runs_dir: str = "runs",
        study: str | None = None,
        storage: str | None = None,
        id: str | None = None,
    ) -> None:
        """``study``: the study to watch (None: the newest in the runs folder, whichever
        that is at each read); ``storage``: its storage URL (None: the journal file)."""
        super().__init__(id=id)
        self.set_reactive(SearchPane.runs_dir, str(runs_dir))
        self.study = study
        self.storage = storage
        self.studies: list[tuple[str, float]] = []
        self.rows: list[TrialRow] = []
        self.space: SearchSpace | None = None
        self.importance: dict[str, float] | None = None
        self.importance_note = ""
        self.chart_view = "best"
        self.search_pid: int | None = None  # the process searching the study, as last read
        self.trial_epochs: int | None = None
        self.reads = 0  # reads shown so far (tests wait on it)
        self._shown_study: str | None = None  # the study the rows and charts are of
        self._importance_of: tuple[str, int] | None = None
        self._reading = False
        self._texts: dict[str, Content] = {}

    def compose(self) -> ComposeResult:
        yield Static("Reading the studies…", id="search-header")
        yield TrialsTable(id="search-table")
        yield Static("", id="search-detail")
        yield Static("", id="search-hint")
        with Horizontal(id="search-charts"):
            yield TrialsPlot(id="search-curve")
            yield TrialsPlot(id="search-param")
            with Vertical(id="search-importance-box"):
                yield ClassBars("parameter importance", id="search-importance")

    def on_mount(self) -> None:
        self.set_interval(REFRESH_SECONDS, self._tick)
        self._show_hint(False)
        self._show_charts()

    def on_show(self) -> None:
        self.refresh_study()

    def on_resize(self, event: Resize) -> None:
        self._show_charts()

    @property
    def table(self) -> TrialsTable:
        return self.query_one(TrialsTable)

    @property
    def highlighted(self) -> TrialRow | None:
        return self.table.highlighted

    @property
    def wide(self) -> bool:
        return self.size.width >= WIDE

    def _update(self, selector: str, content: Content) -> None:
        """Set a line's text; unchanged text is not sent to the terminal again."""
        if self._texts.get(selector) != content:
            self._texts[selector] = content
            self.query_one(selector, Static).update(content)

    def focus_default(self) -> None:
        """The table, or the pane itself while there is no table to show."""
        table = self.table
        (table if table.display else self).focus()

    def _show_hint(self, hint: bool) -> None:
        """Show the hint (no study yet) instead of the table and the charts."""
        table, shown = self.table, self.query_one("#search-hint")
        if shown.display == hint and table.display != hint:
            return
        focused = self.screen.focused if self.is_mounted else None
        shown.display = hint
        for selector in ("#search-table", "#search-detail", "#search-charts"):
            self.query_one(selector).display = not hint
        if focused is (table if hint else self):
            self.focus_default()

    # --- reading the study ------------------------------------------------------------

    def _tick(self) -> None:
        if self.display and self.is_on_screen:
            self.refresh_study()

    def watch_runs_dir(self) -> None:
        self._tick()

    def refresh_study(self) -> None:
        """Read the studies and the watched one again, in a worker (unless a read is
        under way: its answer comes soon)."""
        if self._reading:
            return
        self._reading = True
        need_space = self.space is None or self._shown_study != self.study
        self._read(self.runs_dir, self.study, self.storage, need_space, self._importance_of)

    @work(thread=True, exclusive=False, exit_on_error=False, group="search-read")
    def _read(
        self,
        runs_dir: str,
        study: str | None,
        storage: str | None,
        need_space: bool,
        importance_of: tuple[str, int] | None,
    ) -> None:
        try:
            reading = read_study(runs_dir, study, storage, need_space, importance_of)
        except Exception as exc:  # never a traceback from a read: say what went wrong
            reading = Reading([], study, [], problem=f"{type(exc).__name__}: {exc}")
        if not get_current_worker().is_cancelled:
            self.post_message(self.Read(reading))

    @on(Read)
    def _shown(self, message: Read) -> None:
        self._reading = False
        reading = message.reading
        self.studies = reading.studies
        if reading.study != self._shown_study:
            self._shown_study = reading.study
            self.space, self.trial_epochs, self.search_pid = None, None, None
            self.importance, self.importance_note, self._importance_of = None, "", None
            self.chart_view = "best"
        if reading.space is not None:
            self.space, self.trial_epochs = reading.space, reading.trial_epochs
        if self.search_pid is not None and reading.pid is None and not reading.problem:
            self.app.notify(
                f"The search of study {reading.study} ended: "
                f"{reading.last_line or 'its process exited'}",
                title="Search ended",
                timeout=10,
            )
        self.search_pid = reading.pid
        if reading.importance_of is not None:
            self.importance = reading.importance
            self.importance_note = reading.importance_note
            self._importance_of = reading.importance_of
        self.rows = reading.rows
        self.reads += 1
        self._show_header(reading)
        if reading.study is None:
            self._update("#search-hint", markup(HINT))
            self._show_hint(True)
            return
        self._show_hint(False)
        self.table.show(self.rows)
        self._show_detail()
        self._show_charts()

    def _show_header(self, reading: Reading) -> None:
        if reading.problem:
            self._update("#search-header", markup("[b $error]$why[/]", why=reading.problem))
            return
        if reading.study is None:
            where = self.runs_dir.rstrip("/") + "/studies/"
            self._update("#search-header", markup("[b]No study yet[/] in $where", where=where))
            return
        counts = Counter(r.state for r in reading.rows)
        parts = [f"{counts[s]} {s}" for s in STATE_ORDER if counts[s]]
        total = len(reading.rows)
        trials = f"{total} trial{'s' * (total != 1)}" + (": " + ", ".join(parts) if parts else "")
        best = best_trial(reading.rows)
        best_text = f" · best {accuracy_text(best.value)} (#{best.number})" if best else ""
        others = len(reading.studies) - 1
        more = f" · l: {others} other stud{'ies' if others != 1 else 'y'}" if others > 0 else ""
        running = "searching" if reading.pid is not None else "not searching"
        self._update(
            "#search-header",
            markup(
                "[b]$study[/] · $running$best · $trials$more",
                study=reading.study,
                running=running,
                trials=trials,
                best=best_text,
                more=more,
            ),
        )

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()

    def _show_detail(self) -> None:
        row = self.highlighted
        if row is None:
            text = markup(
                "[dim]No trial yet: the search is starting (its log is in $where).[/]",
                where=f"{self.runs_dir.rstrip('/')}/studies/{self._shown_study}.log",
            )
        else:
            text = markup("$detail", detail=trial_detail(row))
        self._update("#search-detail", text)

    # --- charts -----------------------------------------------------------------------

    def views(self) -> list[str]:
        """The chart views in ``v``'s order: ``best``, each searched parameter, and
        ``importance``."""
        if self.space is not None:
            params = list(self.space.params)
        else:
            params = list(dict.fromkeys(name for r in self.rows for name in r.params))
        return ["best", *params, "importance"]

    def action_next_view(self, step: int = 1) -> None:
        """Show the next chart (``step`` -1: the previous); from ``WIDE`` columns the
        curve stays on the left and the right chart cycles."""
        views = self.views()
        shown = self.chart_view
        if self.wide:
            views = views[1:]
            if shown == "best":  # the right chart shows the first parameter
                shown = views[0]
        current = views.index(shown) if shown in views else 0
        self.chart_view = views[(current + step) % len(views)]
        self._show_charts()

    def _show_charts(self) -> None:
        view = self.chart_view
        if self.wide and view == "best":
            view = self.views()[1]
        curve = self.query_one("#search-curve", TrialsPlot)
        param = self.query_one("#search-param", TrialsPlot)
        box = self.query_one("#search-importance-box")
        curve.display = self.wide or view == "best"
        param.display = view not in ("best", "importance")
        box.display = view == "importance"
        if curve.display:
            curve.show(self.rows)
        if param.display:
            param.show(self.rows, param=view, space=self.space)
        if box.display:
            self._show_importance()

    def _show_importance(self) -> None:
        bars = self.query_one("#search-importance", ClassBars)
        complete = sum(r.state == "complete" for r in self.rows)
        if self.importance:
            names = list(self.importance)
            values = [self.importance[n] for n in names]
            bars.title = f"parameter importance (PED-ANOVA, {complete} complete trials)"
            bars.show(names, values, [f"{v:.0%}" for v in values])
            return
        bars.title = "parameter importance (PED-ANOVA)"
        bars.placeholder = self.importance_note or (
            f"needs more finished trials: {complete} complete, {MIN_IMPORTANCE_TRIALS} needed"
        )
        bars.clear()

    # --- starting a search --------------------------------------------------------------

    def action_new_search(self) -> None:
        self.post_message(self.SearchRequested())

    def new_search(self, config: TrainConfig, space: SearchSpace) -> None:
        """Ask for the search's flags, then start it over ``space`` from ``config`` in the
        background, and watch it."""

        def chosen(choice: SearchChoice | None) -> None:
            if choice is not None:
                self.app.notify(f"Starting the search of study {choice.study}…", timeout=4)
                self._spawn(config, space, choice)

        self.app.push_screen(
            SearchPrompt(
                space,
                study=default_study_name(),
                epochs=config.epochs,
                existing=[name for name, _ in self.studies],
                runs_dir=self.runs_dir,
            ),
            chosen,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="search-spawn")
    def _spawn(self, config: TrainConfig, space: SearchSpace, choice: SearchChoice) -> None:
        from engine import search

        if choice.settings is not None:  # an existing study: carried on with its own settings
            where = {"runs_dir": config.runs_dir, "device": config.device}
            config = TrainConfig.from_dict(where, base=choice.settings.base)
            space = choice.settings.space
        try:
            options = search.SearchOptions(
                study=choice.study,
                trials=choice.trials,
                sampler=choice.sampler,
                pruner=choice.pruner,
                workers=choice.workers,
                epochs=choice.epochs,
            )
            pid = search.spawn_search(config, space, options)
        except (EngineError, OSError) as exc:
            self.post_message(self.NotDone("Search not started", _reason(exc)))
        except Exception as exc:
            self.post_message(self.NotDone("Search not started", f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(self.Spawned(choice.study, pid))

    @on(Spawned)
    def _spawned(self, message: Spawned) -> None:
        self.study = message.study
        self.app.notify(
            f"Search {message.study} runs in the background (pid {message.pid}): it goes on "
            f"after the app quits; `fmnist-tui attach --study {message.study}` watches it again.",
            title="Search started",
            timeout=10,
        )
        self.refresh_study()

    @on(NotDone)
    def _not_done(self, message: NotDone) -> None:
        self.app.notify(message.text, title=message.title, severity="error", timeout=15)

    # --- choosing a study -------------------------------------------------------------

    def action_pick_study(self) -> None:
        if not self.studies:
            self.app.notify(
                "No study in this runs folder yet: n starts a search.", severity="warning"
            )
            return
        choices = [(name, study_about(mtime)) for name, mtime in self.studies]

        def chosen(name: str | None) -> None:
            if name:
                self.watch_study(name)

        self.app.push_screen(StudyPicker(choices, self._shown_study, self.runs_dir), chosen)

    def watch_study(self, name: str) -> None:
        """Watch study ``name`` (read at once)."""
        self.study = name
        self.refresh_study()

    def action_refresh(self) -> None:
        self.refresh_study()

    def action_stop_search(self) -> None:
        study = self._shown_study
        if study is None or self.search_pid is None:
            self.app.notify(
                f"No search of study {study} runs on this machine." if study else "No study yet.",
                severity="warning",
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._stop(self.runs_dir, study)

        self.app.push_screen(
            ConfirmScreen(
                f"Stop the search of study {study} (pid {self.search_pid})? Its running "
                "trials stop at a batch, resumable, and are queued again: n with the same "
                "study name carries it on.",
                "Stop it",
                "Let it run",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="search-stop")
    def _stop(self, runs_dir: str, study: str) -> None:
        from engine import search

        try:
            stopped = search.stop_search(runs_dir, study)
        except (EngineError, OSError) as exc:
            self.post_message(self.NotDone("Search not stopped", _reason(exc)))
            return
        if not stopped:
            self.post_message(self.NotDone("Search not stopped", f"no search of {study} runs"))

    # --- acting on a trial --------------------------------------------------------------

    def action_open_trial(self) -> None:
        row = self.highlighted
        if row is None:
            self.app.notify("No trial here yet.", severity="warning")
            return
        if not row.run_id:
            self.app.notify(f"Trial #{row.number} has no run folder yet.", severity="warning")
            return
        path = Path(self.runs_dir) / row.run_id
        if not (path / "config.json").is_file():
            self.app.notify(
                f"Trial #{row.number}'s run {row.run_id} is gone: {path} no longer exists.",
                title="No such run",
                severity="error",
                timeout=10,
            )
            return
        self.post_message(self.OpenRequested(path))

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_trial()

    def action_train_best(self) -> None:
        study = self._shown_study
        if study is None:
            self.app.notify("No study yet: n starts a search.", severity="warning")
            return
        if best_trial(self.rows) is None:
            self.app.notify(
                f"No trial of study {study} has completed yet: nothing to train.",
                severity="warning",
            )
            return
        self._best(self.runs_dir, study, self.storage)

    @work(thread=True, exclusive=True, exit_on_error=False, group="search-best")
    def _best(self, runs_dir: str, study: str, storage: str | None) -> None:
        from engine import search

        try:
            config = search.best_config(runs_dir, study, storage)
        except (EngineError, OSError) as exc:
            self.post_message(self.NotDone("Cannot train the best", _reason(exc)))
        except Exception as exc:
            self.post_message(self.NotDone("Cannot train the best", f"{type(exc).__name__}: {exc}"))
        else:
            self.post_message(self.BestFound(study, config))

    @on(BestFound)
    def _best_found(self, message: BestFound) -> None:
        best = best_trial(self.rows)
        config = message.config
        which = f"trial #{best.number}'s" if best is not None else "the best trial's"
        scored = f" (val {accuracy_text(best.value)})" if best is not None else ""
        params = param_text(best.params) if best is not None else ""
        trial_epochs = f" (its trials trained {self.trial_epochs})" if self.trial_epochs else ""
        question = (
            f"Train {which} configuration of study {message.study}{scored} as a new run? "
            f"{params}\nFor how many epochs{trial_epochs}? The base config's: {config.epochs}."
        )

        def answered(epochs: int | None) -> None:
            if epochs is None:
                return
            trained = TrainConfig.from_dict({"epochs": epochs}, base=config)
            note = (
                f"Training {which} configuration of study {message.study} for "
                f"{epochs_text(epochs)}: {params}"
            )
            self.post_message(self.TrainRequested(trained, note))

        self.app.push_screen(TrainBestPrompt(question, config.epochs), answered)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    return str(exc)


def read_study(
    runs_dir: str,
    study: str | None,
    storage: str | None,
    need_space: bool,
    importance_of: tuple[str, int] | None,
) -> Reading:
    """The runs folder's studies, newest first, and ``study``'s trials (None: the newest
    study's), whether a process searches it here, and its log's last line when none does;
    its space when ``need_space``; its parameters' importance when its number of complete
    trials is not that of ``importance_of``. Imports Optuna: call it from a worker thread."""
    from engine import search

    problem = ""
    try:
        names = search.list_studies(runs_dir)
    except (EngineError, OSError) as exc:
        names, problem = [], _reason(exc)
    studies = []
    for each in names:
        try:
            mtime = search.journal_path(runs_dir, each).stat().st_mtime
        except OSError:
            mtime = 0.0
        studies.append((each, mtime))
    name = study or (names[0] if names else None)
    if name is None:
        return Reading(studies, None, [], problem=problem)
    try:
        rows = search.study_rows(runs_dir, name, storage)
    except (EngineError, OSError) as exc:
        return Reading(studies, name, [], problem=f"study {name}: {_reason(exc)}")
    found: dict[str, Any] = {}
    if need_space:
        try:
            settings = search.study_settings(runs_dir, name, storage)
        except (EngineError, OSError):
            settings = None
        if settings is not None:
            found.update(space=settings.space, trial_epochs=settings.epochs)
    pid = search.search_process(runs_dir, name)
    if pid is None:
        found["last_line"] = _last_line(search.log_path(runs_dir, name))
    complete = sum(r.state == "complete" for r in rows)
    if (name, complete) != importance_of:
        found["importance_of"] = (name, complete)
        if complete < MIN_IMPORTANCE_TRIALS:
            found["importance_note"] = (
                f"needs more finished trials: {complete} complete, {MIN_IMPORTANCE_TRIALS} needed"
            )
        else:
            try:
                values = search.importance(runs_dir, name, storage)
            except (EngineError, OSError, ValueError, RuntimeError) as exc:
                found["importance_note"] = f"not computed: {_reason(exc)}"
            else:
                finite = {k: v for k, v in values.items() if math.isfinite(v)}
                found["importance"] = finite or None
                found["importance_note"] = "" if finite else "needs more finished trials"
    return Reading(studies, name, rows, pid=pid, problem=problem, **found)
