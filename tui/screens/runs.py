"""The Runs pane: every run under the runs folder, their curves, and what to do with them.

The table is read again every ``REFRESH_SECONDS`` while the pane is shown (or five
times as long as the last listing took, on a folder of thousands of runs), in a
thread worker (status files and locks are I/O), incrementally (``RunListing``: only the
folders that changed are read again) and one listing at a time: a refresh asked for
while one runs is made once it ends. The first screenful of runs is posted before the
rest are read. Opening a run or comparing several reads their metrics logs in a worker
too; deleting and exporting run in workers. Resuming, attaching and inspecting are the
app's to do: the pane asks by message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Input, Static
from textual.worker import get_current_worker

from engine.errors import EngineError
from engine.runs import Run, RunInfo, RunListing, reason_text
from tui.plain import markup
from tui.run_curves import RunCurves, differing_settings, read_curves, short_id
from tui.screens.confirm import ConfirmScreen
from tui.screens.export import ExportChoice, ExportScreen
from tui.screens.pane import Pane
from tui.widgets.curve_overlay import CurveOverlay, Series
from tui.widgets.runs_table import (
    DESCENDING,
    SORT_COLUMNS,
    WIDE_COLUMNS,
    RunsTable,
    filter_problem,
    filter_runs,
    run_text,
    sort_runs,
)

REFRESH_SECONDS = 2.0
# The next refresh waits at least this many times as long as the last listing took, so
# that reading a runs folder of thousands of runs never takes most of the CPU.
REFRESH_SHARE = 5.0
# One colour per compared run: the table's mark and the curves share it.
PALETTE = ("cyan", "magenta", "yellow", "green", "red", "blue")
HINT = (
    "enter: curves of the highlighted run · space: mark runs · c: compare them\n"
    "r: resume here · R: resume detached · a: watch a live run · i: inspect it\n"
    "d: delete · e: export · < >: sort by a column · -: reverse it · /: filter"
)
HEADERS = dict(WIDE_COLUMNS)


class RunsPane(Pane):
    """Past and live runs: open, compare, resume, attach, delete, export, inspect."""

    DEFAULT_FOCUS = "#runs-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "open", "Open", show=False),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("r", "resume(False)", "Resume"),
        Binding("R", "resume(True)", "Resume detached", show=False),
        Binding("a", "attach", "Attach"),
        Binding("d", "delete", "Delete"),
        Binding("e", "export", "Export"),
        Binding("i", "inspect", "Inspect", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("greater_than_sign", "sort(1)", "Sort", show=False),
        Binding("less_than_sign", "sort(-1)", "Sort back", show=False),
        Binding("minus", "reverse", "Reverse sort", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    # --- messages: from the workers (to this pane), and to the app --------------------

    @dataclass
    class Listed(Message):
        """Runs read so far (``done``: all of them), newest first."""

        bubble: ClassVar[bool] = False
        infos: list[RunInfo]
        where: str
        problem: str = ""
        done: bool = True

    @dataclass
    class CurvesLoaded(Message):
        bubble: ClassVar[bool] = False
        compare: bool
        curves: list[RunCurves]

    @dataclass
    class Done(Message):
        """A delete or an export finished (``ok``) or failed; ``text`` says which."""

        bubble: ClassVar[bool] = False
        ok: bool
        text: str

    @dataclass
    class ResumeRequested(Message):
        info: RunInfo
        detached: bool
        epochs: int | None = None  # a new total, to extend the run

    @dataclass
    class ExtendRequested(Message):
        """Train a finished run for more epochs (the app asks how many)."""

        info: RunInfo

    @dataclass
    class AttachRequested(Message):
        info: RunInfo

    @dataclass
    class InspectRequested(Message):
        path: Path

    @dataclass
    class Highlighted(Message):
        """The table's cursor is on this run (the Inspect pane's default)."""

        info: RunInfo

    runs_dir: reactive[str] = reactive("runs", init=False)
    """The folder listed: the app passes on the form's ``runs_dir`` (attribute down)."""

    # --- layout ---------------------------------------------------------------------

    def __init__(self, *, runs_dir: str = "runs", id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(RunsPane.runs_dir, str(runs_dir))
        self.infos: list[RunInfo] = []
        self.marked: dict[str, str] = {}  # run id -> colour, in marking order
        # What the charts show: (compare, run folders), read again while one trains.
        self.showing: tuple[bool, list[Path]] | None = None
        self._texts: dict[str, Content] = {}
        self._open_when_listed: str | None = None  # a run id to open once listed
        self.listing = RunListing(runs_dir)
        """The incremental listing of ``runs_dir`` (its counters tell how it reads)."""
        self._listing_busy = False
        self._list_again = False
        self._listed_all = False
        self.sort_column = "run"
        """The column the runs are sorted by (``SORT_COLUMNS``), newest first at first."""
        self.sort_reversed = False
        self.filter_text = ""
        """The words the runs shown must hold (``filter_runs``); "" shows all."""
        self.shown_infos: list[RunInfo] = []
        """The runs in the table: ``infos`` filtered and sorted."""
        self._run_texts: dict[str, tuple[RunInfo, str]] = {}

    def compose(self) -> ComposeResult:
        yield Static("Reading the runs folder…", id="runs-header")
        yield Input(placeholder="filter: words, state:running", id="runs-filter", compact=True)
        yield RunsTable(id="runs-table")
        yield Static("", id="runs-detail")
        yield Static(HINT, id="runs-hint")
        with Horizontal(id="runs-charts"):
            yield CurveOverlay(id="runs-loss")
            yield CurveOverlay(id="runs-accuracy")
        yield Static("", id="runs-diff")

    def on_mount(self) -> None:
        self._timer = self.set_timer(REFRESH_SECONDS, self._tick)
        self.query_one("#runs-filter").display = False
        self._show_hint()

    def on_show(self) -> None:
        self.refresh_runs()

    @property
    def table(self) -> RunsTable:
        return self.query_one(RunsTable)

    @property
    def highlighted(self) -> RunInfo | None:
        return self.table.highlighted

    def _show_hint(self, hint: bool = True) -> None:
        """Show the keys where the charts go until a run is opened (and after it is gone)."""
        self.query_one("#runs-hint").display = hint
        self.query_one("#runs-charts").display = not hint
        if hint:
            self.query_one("#runs-diff").display = False

    # --- listing --------------------------------------------------------------------

    def _tick(self) -> None:
        if self.display and self.is_on_screen:
            self.refresh_runs()
        if not self._listing_busy:
            self._timer = self.set_timer(self.refresh_seconds, self._tick)
        # else: _listed sets the next one once the listing ends

    @property
    def refresh_seconds(self) -> float:
        """Seconds to the next refresh while shown: ``REFRESH_SECONDS``, or
        ``REFRESH_SHARE`` times the last listing's wall time when that is longer."""
        return max(REFRESH_SECONDS, REFRESH_SHARE * self.listing.last_seconds)

    def watch_runs_dir(self) -> None:
        # Settings loaded from the command palette can change it while the pane shows.
        if self.display and self.is_on_screen:
            self.refresh_runs()

    def refresh_runs(self) -> None:
        """Read the runs again; while a listing runs, once more after it (never two
        at once, never one cut short)."""
        if self._listing_busy:
            self._list_again = True
            return
        if self.listing.runs_dir != Path(self.runs_dir).expanduser():
            self.listing = RunListing(self.runs_dir)
            self._listed_all = False
        self._listing_busy = True
        self._list(self.listing, self.runs_dir)

    def open_run(self, run_id: str) -> None:
        """Highlight run ``run_id`` and show its curves, once the runs are read again
        (the Search pane opens a trial's run so)."""
        self._open_when_listed = run_id
        self.refresh_runs()

    @work(thread=True, exclusive=False, exit_on_error=False, group="runs-list")
    def _list(self, listing: RunListing, runs_dir: str) -> None:
        worker = get_current_worker()
        # A screenful first, then the rest in one go: the table shows while the rest is read.
        batches = listing.batches(first=50, size=1 << 30)
        infos: list[RunInfo] = []
        try:
            for infos in batches:
                if worker.is_cancelled:  # the pane is going away: no one to post to
                    batches.close()
                    return
                self.post_message(self.Listed(infos, runs_dir, done=False))
        except OSError as exc:
            problem = f"cannot read {runs_dir}: {exc.strerror or exc}"
            self.post_message(self.Listed([], runs_dir, problem))
            return
        self.post_message(self.Listed(infos, runs_dir))

    @on(Listed)
    def _listed(self, message: Listed) -> None:
        if message.done:
            self._listing_busy = False
            self._timer.stop()
            self._timer = self.set_timer(self.refresh_seconds, self._tick)
            if self._list_again:
                self._list_again = False
                self.refresh_runs()
        if message.where != self.runs_dir:
            return  # read before the folder changed: the next listing reads the new one
        if not message.done and self._listed_all:
            return  # the whole table shows already: wait for the whole new listing
        self._listed_all = self._listed_all or message.done
        self.infos = message.infos
        self._header(message.where, message.problem, reading=not message.done)
        self._show_rows()
        ids = {i.id for i in self.infos}
        if message.done:
            self.marked = {k: v for k, v in self.marked.items() if k in ids}
        wanted = self._open_when_listed
        if wanted is not None and (wanted in ids or message.done):
            self._open_when_listed = None
            if self.table.select(wanted):
                self.action_open()
        self._show_detail()
        if self.showing is not None:
            by_path = {i.path: i for i in self.infos}
            shown = [by_path.get(p) for p in self.showing[1]]
            if any(i is not None and i.state.live for i in shown):
                self._load_curves(self.showing[0], self.showing[1])

    def _header(self, where: str, problem: str = "", reading: bool = False) -> None:
        if problem:
            self._update("#runs-header", markup("[b $error]$problem[/]", problem=problem))
            return
        running = sum(i.state.live for i in self.infos)
        live = f" · {running} training" if running else ""
        count = f"{len(self.infos):,} run{'s' * (len(self.infos) != 1)}"
        if reading:
            count = f"{count} so far"
        arrow = "↓" if (self.sort_column in DESCENDING) != self.sort_reversed else "↑"
        order = f" · by {HEADERS[self.sort_column].split()[0]} {arrow}"
        shown = ""
        if self.filter_text:
            shown = f" · {len(self.shown_infos):,} match “{self.filter_text}”"
        where = where.rstrip("/") + "/"
        self._update(
            "#runs-header",
            markup(
                "[b]$count[/]$live in $where[dim]$order[/]$shown",
                count=count,
                live=live,
                where=where,
                order=order,
                shown=shown,
            ),
        )

    def _show_rows(self) -> None:
        """Filter and sort ``infos`` into the table (the header counts the matches)."""
        infos = self.infos
        if self.filter_text and not filter_problem(self.filter_text):
            texts = {}
            for info in infos:
                made = self._run_texts.get(info.id)
                if made is None or made[0] is not info:
                    made = (info, run_text(info))
                    self._run_texts[info.id] = made
                texts[info.id] = made[1]
            infos = filter_runs(infos, self.filter_text, texts)
        if self.sort_column != "run" or self.sort_reversed:
            infos = sort_runs(infos, self.sort_column, self.sort_reversed)
        self.shown_infos = infos
        self.table.sorted_by = self.sort_column
        self.table.show(infos, self.marked)

    # --- sorting and filtering ------------------------------------------------------

    def action_sort(self, step: int) -> None:
        """Sort by the next (``step`` 1) or the previous (-1) column of ``SORT_COLUMNS``."""
        index = SORT_COLUMNS.index(self.sort_column)
        self.sort_by(SORT_COLUMNS[(index + step) % len(SORT_COLUMNS)])

    def action_reverse(self) -> None:
        self.sort_by(self.sort_column, not self.sort_reversed)

    def sort_by(self, column: str, reverse: bool = False) -> None:
        """Sort the table by ``column`` (``SORT_COLUMNS``); ``ValueError`` for another."""
        if column not in SORT_COLUMNS:
            raise ValueError(f"no column {column!r}; columns: {', '.join(SORT_COLUMNS)}")
        self.sort_column, self.sort_reversed = column, reverse
        self._show_rows()
        self._header(self.runs_dir, reading=not self._listed_all)

    @on(DataTable.HeaderSelected)
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's header sorts by it; a second click reverses."""
        event.stop()
        column = str(event.column_key.value)
        if column in SORT_COLUMNS:
            same = column == self.sort_column
            self.sort_by(column, not self.sort_reversed if same else False)

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.focus()

    def set_filter(self, text: str) -> None:
        """Show only the runs ``text`` matches (``filter_runs``); "" shows them all. A
        ``state:`` naming no state is said in the header and filters nothing."""
        self.filter_text = text.strip()
        problem = filter_problem(self.filter_text)
        self._show_rows()
        if problem:
            self._update("#runs-header", markup("[b $warning]filter: $problem[/]", problem=problem))
        else:
            self._header(self.runs_dir, reading=not self._listed_all)
        self._show_detail()

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.set_filter(event.value)

    @on(Input.Submitted, "#runs-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.table.focus()
        if not event.value.strip():
            self.query_one("#runs-filter").display = False

    def action_clear_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.set_filter("")
            self.table.focus()

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_detail()
        info = self.highlighted
        if info is not None:
            self.post_message(self.Highlighted(info))

    def _update(self, selector: str, content: Content) -> None:
        """Set a line's text; unchanged text is not sent to the terminal again."""
        if self._texts.get(selector) != content:
            self._texts[selector] = content
            self.query_one(selector, Static).update(content)

    def _show_detail(self) -> None:
        info = self.highlighted
        if info is None:
            empty = Content("")
            if not self.infos:
                empty = markup("[dim]No runs yet: train one (s in any pane) and it shows here.[/]")
            elif self.filter_text and not self.shown_infos:
                empty = markup("[dim]No run matches the filter; escape clears it.[/]")
            self._update("#runs-detail", empty)
            return
        # The reason is status.json's: shown as written, whatever brackets it holds.
        summary = info.config.summary() if info.config else "config.json is unreadable"
        lines = [markup("$summary", summary=summary)]
        reason = f": {reason_text(info.reason)}" if info.reason else ""
        if info.state == "failed":
            lines.append(markup("[b $error]failed$reason[/]", reason=reason))
        elif info.state == "interrupted":
            how = "r resumes it here, R detached" if info.resumable else "no checkpoint to resume"
            lines.append(markup("[$warning]interrupted$reason[/] · $how", reason=reason, how=how))
        elif info.state.live and self.is_own_run(info):
            lines.append(markup("[$success]training in this app[/] · a shows it in the Monitor"))
        elif info.state.live:
            lines.append(markup("[$success]training now[/] · a attaches the Monitor to it"))
        elif info.state == "finished" and info.reason:  # early stopping ended it
            lines.append(markup("[$success]finished$reason[/]", reason=reason))
        self._update("#runs-detail", Content("\n").join(lines))

    def is_own_run(self, info: RunInfo) -> bool:
        """Whether ``info`` is the run this app's Monitor shows now (trained or attached)."""
        session = getattr(self.app, "session", None)
        run = getattr(session, "run", None)
        return bool(getattr(session, "busy", False)) and run is not None and run.path == info.path

    # --- curves ---------------------------------------------------------------------

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        info = self._chosen()
        if info is not None:
            self.showing = (False, [info.path])
            self._load_curves(False, [info.path])

    def action_mark(self) -> None:
        info = self.highlighted
        if info is None:
            return
        if info.id in self.marked:
            del self.marked[info.id]
        elif len(self.marked) >= len(PALETTE):
            self.app.notify(
                f"At most {len(PALETTE)} runs can be compared at once.", severity="warning"
            )
            return
        else:
            free = [c for c in PALETTE if c not in self.marked.values()]
            self.marked[info.id] = free[0]
        self._show_rows()
        if self.table.cursor_row < self.table.row_count - 1:
            self.table.move_cursor(row=self.table.cursor_row + 1, animate=False)

    def action_compare(self) -> None:
        paths = [i.path for i in self.infos if i.id in self.marked]
        if len(paths) < 2:
            self.app.notify(
                "Mark two or more runs with space, then press c to compare them.",
                severity="warning",
            )
            return
        order = list(self.marked)
        paths.sort(key=lambda p: order.index(p.name))
        self.showing = (True, paths)
        self._load_curves(True, paths)

    @work(thread=True, exclusive=True, exit_on_error=False, group="runs-curves")
    def _load_curves(self, compare: bool, paths: list[Path]) -> None:
        curves = [read_curves(p) for p in paths]
        if not get_current_worker().is_cancelled:
            self.post_message(self.CurvesLoaded(compare, curves))

    @on(CurvesLoaded)
    def _curves_loaded(self, message: CurvesLoaded) -> None:
        self._show_hint(False)
        loss = self.query_one("#runs-loss", CurveOverlay)
        accuracy = self.query_one("#runs-accuracy", CurveOverlay)
        diff = self.query_one("#runs-diff", Static)
        diff.display = message.compare
        if message.compare:
            colours = [self.marked.get(c.run_id, "white") for c in message.curves]
            pairs = list(zip(message.curves, colours, strict=True))
            # Each run's train loss as a thin line under its test loss's marks, one colour.
            loss.show(
                "train loss (lines) · test loss (marks)",
                [Series("", c.batch_x, c.train_loss, k) for c, k in pairs]
                + [Series(short_id(c.run_id), c.epochs, c.test_loss, k, "hd") for c, k in pairs],
                placeholder="nothing logged yet",
            )
            diff.update(self._settings_diff([c.run_id for c in message.curves], colours))
            accuracy.show(
                "test accuracy %",
                [Series(short_id(c.run_id), c.epochs, c.test_accuracy, k, "hd") for c, k in pairs],
                ylim=_accuracy_range(message.curves),
            )
            return
        [curves] = message.curves
        loss.show(
            f"{short_id(curves.run_id)}: loss",
            [
                Series("train", curves.batch_x, curves.train_loss, "cyan"),
                Series("test", curves.epochs, curves.test_loss, "orange", "hd"),
            ],
            placeholder="nothing logged yet",
        )
        accuracy.show(
            "test accuracy %",
            [Series("", curves.epochs, curves.test_accuracy, "green", "hd")],
            placeholder="after the first epoch",
            ylim=_accuracy_range([curves]),
        )

    def _settings_diff(self, run_ids: list[str], colours: list[str]) -> Table | Content:
        """The settings that differ between the runs compared: a row a setting, a column
        a run (headed by its short id in its colour, as in the charts' legend)."""
        by_id = {i.id: i for i in self.infos}
        configs = []
        for run_id in run_ids:
            config = by_id[run_id].config if run_id in by_id else None
            configs.append(config.to_dict() if config is not None else None)
        rows = differing_settings(configs)
        if not rows:
            return markup("[dim]The runs compared have the same settings.[/]")
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=False)
        table.add_column("setting", style="dim")
        for run_id, colour in zip(run_ids, colours, strict=True):
            table.add_column(Text(short_id(run_id), style=f"bold {colour}"), no_wrap=True)
        for key, values in rows:
            table.add_row(key, *values)
        return table

    # --- acting on a run --------------------------------------------------------------

    def _chosen(self) -> RunInfo | None:
        """The highlighted run to act on; None (and a notification saying why) when there
        is none, or when another process deleted its folder since it was listed."""
        info = self.highlighted
        if info is None:
            self.app.notify("No run here yet.", severity="warning")
        elif not (info.path / "config.json").is_file():
            self.app.notify(
                f"Run {info.id} is gone: its folder {info.path} no longer exists "
                "(deleted by another process?).",
                title="No such run",
                severity="error",
                timeout=10,
            )
            return None
        return info

    def action_resume(self, detached: bool) -> None:
        info = self._chosen()
        if info is None:
            return
        if info.state.live:
            self.app.notify(
                f"Run {info.id} is training now; press a to watch it.", severity="warning"
            )
        elif info.state == "finished" and info.resumable:
            self.post_message(self.ExtendRequested(info))
        elif not info.resumable:
            self.app.notify(
                f"Run {info.id} stopped before its first checkpoint: nothing to resume.",
                severity="warning",
            )
        else:
            self.post_message(self.ResumeRequested(info, detached))

    def action_attach(self) -> None:
        info = self._chosen()
        if info is None:
            return
        if info.state.live and self.is_own_run(info):
            self.app.action_show_pane("monitor")  # type: ignore[attr-defined]
            return
        if not info.state.live:
            hint = "; r resumes it" if info.state == "interrupted" and info.resumable else ""
            self.app.notify(
                f"Run {info.id} is not training ({info.state}){hint}.", severity="warning"
            )
            return
        self.post_message(self.AttachRequested(info))

    def action_inspect(self) -> None:
        info = self._chosen()
        if info is None:
            return
        if not info.resumable:
            self.app.notify(f"Run {info.id} has no checkpoint to inspect.", severity="warning")
            return
        self.post_message(self.InspectRequested(info.path))

    def action_delete(self) -> None:
        info = self._chosen()
        if info is None:
            return
        if info.state.live:
            self.app.notify(
                f"Run {info.id} is training: stop it before deleting it "
                "(a attaches the Monitor, x stops the run).",
                title="Not deleted",
                severity="warning",
                timeout=8,
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete(info.path)

        self.app.push_screen(
            ConfirmScreen(
                f"Delete run {info.id} ({info.state}) and every file in {info.path}? "
                "This cannot be undone.",
                "Delete",
                "Keep",
            ),
            answered,
        )

    @work(thread=True, exclusive=False, exit_on_error=False, group="runs-delete")
    def _delete(self, path: Path) -> None:
        try:
            Run(path).delete()
        except (EngineError, OSError) as exc:
            self.post_message(self.Done(False, f"Cannot delete {path.name}: {exc}"))
        else:
            self.post_message(self.Done(True, f"Deleted run {path.name}"))

    def action_export(self) -> None:
        info = self._chosen()
        if info is None:
            return
        if not info.resumable:
            self.app.notify(f"Run {info.id} has no checkpoint to export.", severity="warning")
            return
        from engine.fields import absolute_model_reference, is_model_reference

        model = info.config.model if info.config is not None else ""
        factory: str | None = getattr(self.app, "model_factory", None)
        if is_model_reference(model) and (
            factory is None or absolute_model_reference(factory) != absolute_model_reference(model)
        ):
            # Said now, not after the dialog: the app imports only the factory it was given.
            self.app.notify(
                f"Run {info.id} trains a model from your code ({model}); to export it, "
                f"start the app with fmnist-tui --model {model}",
                title="Not exported",
                severity="warning",
                timeout=10,
            )
            return

        def answered(choice: ExportChoice | None) -> None:
            if choice is not None:
                self.app.notify(f"Exporting run {info.id}…", timeout=3)
                self._export(info.path, choice)

        self.app.push_screen(ExportScreen(info.id), answered)

    @work(thread=True, exclusive=False, exit_on_error=False, group="runs-export")
    def _export(self, path: Path, choice: ExportChoice) -> None:
        from engine.export import export_model

        notes: list[str] = []
        try:
            files = export_model(
                Run(path),
                "best",
                note=notes.append,
                formats=choice.formats,
                metrics="csv" if choice.metrics else None,
                # A run of the user's own model: only the factory the app was given.
                model_factory=getattr(self.app, "model_factory", None),
            )
        except (EngineError, OSError, RuntimeError) as exc:
            self.post_message(self.Done(False, f"Cannot export {path.name}: {exc}"))
        else:
            names = ", ".join(f.name for f in files)
            what = "best model" if choice.formats else "metrics"
            text = f"Exported run {path.name}'s {what} to {files[0].parent}: {names}"
            self.post_message(self.Done(True, "; ".join([text, *notes])))

    @on(Done)
    def _done(self, message: Done) -> None:
        self.app.notify(message.text, severity="information" if message.ok else "error", timeout=10)
        if self.showing is not None and not all(p.exists() for p in self.showing[1]):
            self.showing = None
            self._show_hint()
        self.refresh_runs()


def _accuracy_range(curves: list[RunCurves]) -> tuple[float, float] | None:
    """0-100 % while no run has two epochs (plotext would stretch one point's range)."""
    return (0.0, 100.0) if all(len(c.epochs) < 2 for c in curves) else None
