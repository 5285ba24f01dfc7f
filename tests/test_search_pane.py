"""The Search pane (key 6) by its keys, on studies made in the test.

A study is made with ``engine.search.create_study`` and given trials with Optuna's own
``add_trial`` (complete, pruned, failed, running), so the table, the charts and the keys
are tested on known numbers without training a search; the best trial's run is a real
run trained on 2,000 images. One test starts a real, tiny search in the background from
the pane's prompt and watches it to its end.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial
from pane_helpers import QUICK, Notifications, shown, wait_for
from textual.pilot import Pilot
from textual.widgets import Input, Select

from engine.config import TrainConfig
from engine.data import ImageData
from engine.runs import Run, list_runs
from engine.search import SearchOptions, create_study, open_storage, search_process, study_rows
from engine.search_space import SearchSpace
from engine.trainer import Trainer
from tui.app import FmnistApp
from tui.screens.search import MIN_IMPORTANCE_TRIALS, SearchPane
from tui.widgets.class_bars import ClassBars
from tui.widgets.runs_table import RunsTable
from tui.widgets.search_charts import TrialsPlot
from tui.widgets.search_dialogs import SearchPrompt, StudyPicker, TrainBestPrompt
from tui.widgets.search_table import TrialsTable

STUDY = "demo"
SPACE = {
    "lr": {"low": 1e-4, "high": 1e-1, "log": True},
    "batch_size": [64, 128],
    "optimizer": ["adamw", "sgd"],
}
DISTRIBUTIONS = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "batch_size": CategoricalDistribution([64, 128]),
    "optimizer": CategoricalDistribution(["adamw", "sgd"]),
}
BASE_EPOCHS = 2  # the base config's; each trial trains TRIAL_EPOCHS
TRIAL_EPOCHS = 1


def base_config(runs: Path, **settings: object) -> TrainConfig:
    # The data folder as the study records it (absolute), so the app trains the best
    # configuration on the data given to it rather than loading its own.
    config = TrainConfig.from_dict(
        {"epochs": BASE_EPOCHS, **QUICK, "runs_dir": str(runs), **settings}
    )
    return config.with_absolute_paths()


def add(
    study: optuna.Study,
    state: TrialState,
    params: dict[str, object],
    values: list[float],
    **attrs: object,
) -> None:
    study.add_trial(
        create_trial(
            state=state,
            params=params,
            distributions=DISTRIBUTIONS,
            value=max(values) if state == TrialState.COMPLETE else None,
            intermediate_values=dict(enumerate(values, start=1)),
            user_attrs=attrs,
        )
    )


@pytest.fixture(scope="module")
def tiny(small: ImageData) -> ImageData:
    """600 train and 200 test images: the trials' and the best's runs train in a blink."""
    return small.subset(600, 200, seed=0)


def make_study(runs: Path, data: ImageData | None = None) -> dict[str, str]:
    """Study ``demo``: #0 complete 84%, #1 pruned after epoch 1, #2 complete 86% (the
    best; a real run trained on ``data`` when given), #3 failed, #4 running. Returns
    the trials' run ids by name."""
    base = base_config(runs)
    space = SearchSpace.from_table(SPACE)
    study = create_study(base, space, SearchOptions(study=STUDY, trials=5, epochs=TRIAL_EPOCHS))
    best_params = {"lr": 0.003, "batch_size": 128, "optimizer": "adamw"}
    best_run = "20260101-120200-mlp-demo-t002-cccc"
    if data is not None:
        trial_config = TrainConfig.from_dict({**best_params, "epochs": TRIAL_EPOCHS}, base=base)
        best_run = Trainer(trial_config, data=data).fit().run_dir.name
    ids = {"best": best_run, "first": "20260101-120000-mlp-demo-t000-aaaa"}
    add(study, TrialState.COMPLETE, {"lr": 0.001, "batch_size": 64, "optimizer": "adamw"},
        [0.80, 0.84], run_id=ids["first"])  # fmt: skip
    add(study, TrialState.PRUNED, {"lr": 0.09, "batch_size": 64, "optimizer": "sgd"},
        [0.31], run_id="20260101-120100-mlp-demo-t001-bbbb", pruned_at=1)  # fmt: skip
    add(study, TrialState.COMPLETE, best_params, [0.82, 0.86], run_id=best_run)
    add(study, TrialState.FAIL, {"lr": 0.0002, "batch_size": 128, "optimizer": "sgd"}, [],
        run_id="20260101-120300-mlp-demo-t003-dddd", reason="out of memory")  # fmt: skip
    add(study, TrialState.RUNNING, {"lr": 0.0005, "batch_size": 64, "optimizer": "adamw"},
        [0.78], run_id="20260101-120400-mlp-demo-t004-eeee")  # fmt: skip
    return ids


def add_complete(study: optuna.Study, count: int) -> None:
    """``count`` complete trials of 70-75%, their parameters spread over the space."""
    for k in range(count):
        params = {"lr": 10 ** (-4 + k * 0.4), "batch_size": (64, 128)[k % 2],
                  "optimizer": ("adamw", "sgd")[k % 3 == 0]}  # fmt: skip
        add(study, TrialState.COMPLETE, params, [0.70 + 0.01 * k])


def make_app(runs: Path, data: ImageData, study: str | None = STUDY) -> FmnistApp:
    app = FmnistApp(base_config(runs), data=data, study=study)
    app.image_mode = "blocks"
    return app


async def trials_shown(pilot: Pilot, count: int) -> TrialsTable:
    table = pilot.app.query_one(TrialsTable)
    await wait_for(pilot, lambda: table.row_count == count)
    return table


def cells(table: TrialsTable, number: int) -> list[str]:
    return [str(cell) for cell in table.get_row(str(number))]


async def test_the_table_shows_each_trial_its_state_and_the_best(
    tmp_path: Path, tiny: ImageData
) -> None:
    runs = tmp_path / "runs"
    ids = make_study(runs)
    app = make_app(runs, tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        # attach --study opens the app on the Search pane, watching the study.
        table = await trials_shown(pilot, 5)
        assert app.current_pane == "search"
        assert [r.number for r in table.rows_shown] == [4, 3, 2, 1, 0]  # newest first
        assert cells(table, 2) == [
            "2*",
            "complete",
            "lr 3e-3 b128 adamw",
            "86.0%",
            "2",
            "—",
        ]
        assert cells(table, 1)[1:] == ["pruned", "lr 0.09 b64 sgd", "31.0%", "1", "1"]
        assert cells(table, 3)[1:4] == ["failed", "lr 2e-4 b128 sgd", "—"]
        assert cells(table, 4)[1] == "running" and cells(table, 0)[0] == "0 "
        header = " ".join(shown(app.query_one("#search-header")).split())
        assert header.startswith(
            f"{STUDY} · not searching · best 86.0% (#2) · 5 trials: 1 running, 2 complete"
        )
        # The line under the table gives the highlighted trial in full.
        await pilot.press("down", "down")
        assert table.highlighted is not None and table.highlighted.number == 2
        detail = " ".join(shown(app.query_one("#search-detail")).split())
        assert detail == (
            f"#2 complete · lr 0.003 · batch_size 128 · optimizer adamw · val 86.0% · "
            f"run {ids['best']}"
        )
        await pilot.press("down")
        assert "pruned after epoch 1" in shown(app.query_one("#search-detail"))

        # A trial told to the study shows at the next read, without a key.
        loaded = optuna.load_study(study_name=STUDY, storage=open_storage(None, runs, STUDY))
        add(loaded, TrialState.COMPLETE, {"lr": 0.01, "batch_size": 64, "optimizer": "sgd"},
            [0.87], run_id="20260101-120500-mlp-demo-t005-ffff")  # fmt: skip
        await wait_for(pilot, lambda: table.row_count == 6, timeout=10)
        assert table.best_number == 5 and cells(table, 5)[0] == "5*"
        assert table.highlighted is not None and table.highlighted.number == 1  # kept
        # On the newest trial, the cursor follows the search to the trials that start.
        assert table.select_number(5)
        add(loaded, TrialState.RUNNING, {"lr": 0.02, "batch_size": 64, "optimizer": "sgd"}, [])
        await wait_for(pilot, lambda: table.row_count == 7, timeout=10)
        assert table.highlighted is not None and table.highlighted.number == 6


async def test_the_charts_cycle_with_v_on_a_log_axis_for_a_log_range(
    tmp_path: Path, tiny: ImageData
) -> None:
    runs = tmp_path / "runs"
    make_study(runs)
    app = make_app(runs, tiny)
    async with app.run_test(size=(80, 24)) as pilot:
        await trials_shown(pilot, 5)
        pane = app.query_one(SearchPane)
        curve = app.query_one("#search-curve", TrialsPlot)
        param = app.query_one("#search-param", TrialsPlot)
        box = app.query_one("#search-importance-box")
        await wait_for(pilot, lambda: pane.space is not None)
        assert pane.views() == ["best", "lr", "optimizer", "batch_size", "importance"] or (
            pane.views()[0] == "best" and set(pane.views()[1:4]) == set(SPACE)
        )
        assert curve.display and not param.display and not box.display
        curve.redraw_now()
        assert "best val accuracy % by trial" in shown(curve)

        views = pane.views()
        await pilot.press("v")
        assert pane.chart_view == views[1] and param.display and not curve.display
        while pane.chart_view != "lr":
            await pilot.press("v")
        param.redraw_now()
        assert param.log_x and "by lr (log)" in shown(param)
        while pane.chart_view != "batch_size":
            await pilot.press("v")
        param.redraw_now()
        assert not param.log_x and "64" in shown(param) and "128" in shown(param)
        while pane.chart_view != "importance":
            await pilot.press("v")
        assert box.display and not param.display
        bars = app.query_one("#search-importance", ClassBars)
        assert f"2 complete, {MIN_IMPORTANCE_TRIALS} needed" in shown(bars)
        # With enough complete trials, PED-ANOVA's importances show as bars.
        loaded = optuna.load_study(study_name=STUDY, storage=open_storage(None, runs, STUDY))
        add_complete(loaded, MIN_IMPORTANCE_TRIALS)
        await wait_for(pilot, lambda: pane.importance is not None, timeout=10)
        assert pane.importance is not None and set(pane.importance) == set(SPACE)
        # The title and the bars may show on different refreshes: wait for both.
        await wait_for(
            pilot,
            lambda: (
                "PED-ANOVA, 8 complete trials" in shown(bars)
                and all(name in shown(bars) for name in SPACE)
                and "%" in shown(bars)
            ),
        )
        await pilot.press("v")
        assert pane.chart_view == "best" and curve.display
        await pilot.press("V")
        assert pane.chart_view == "importance"

        # From WIDE columns the curve stays, and v cycles the chart beside it.
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: curve.display and box.display)
        await pilot.press("v")
        assert curve.display and param.display and pane.chart_view == pane.views()[1]


async def test_open_a_trial_and_train_the_best_configuration(
    tmp_path: Path, tiny: ImageData
) -> None:
    runs = tmp_path / "runs"
    ids = make_study(runs, tiny)
    app = make_app(runs, tiny)
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        table = await trials_shown(pilot, 5)
        # A trial whose run folder is not there (#0, made up) says so.
        assert table.select_number(0)
        assert table.highlighted is not None and table.highlighted.number == 0
        await pilot.press("o")
        assert any(f"{ids['first']} is gone" in n for n in notes)

        # enter on the best trial opens its run in the Runs pane, its curves shown.
        assert table.select_number(2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_pane == "runs")
        runs_table = app.query_one(RunsTable)
        await wait_for(
            pilot, lambda: runs_table.highlighted and runs_table.highlighted.id == ids["best"]
        )
        await wait_for(pilot, lambda: app.query_one("#runs-charts").display)

        # b trains the best configuration as a new run, for the epochs asked (the base
        # config's at first), checked as they are typed.
        await pilot.press("6")
        await wait_for(pilot, lambda: app.current_pane == "search")
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainBestPrompt))
        prompt = app.screen
        question = " ".join(shown(prompt.query_one("#train-best-question")).split())
        assert "trial #2" in question and f"The base config's: {BASE_EPOCHS}" in question
        epochs = prompt.query_one("#best-epochs", Input)
        assert epochs.value == str(BASE_EPOCHS)
        epochs.value = "0"
        await wait_for(pilot, lambda: "epochs: give a whole number" in shown(
            prompt.query_one("#train-best-note")))  # fmt: skip
        await pilot.press("enter")
        assert app.screen is prompt
        epochs.value = str(BASE_EPOCHS + 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_pane == "monitor")
        best_runs = lambda: [i for i in list_runs(runs) if f"{STUDY}-best" in i.id]  # noqa: E731
        await wait_for(pilot, lambda: best_runs() and best_runs()[0].config is not None)
        config = Run(best_runs()[0].path).config()
        assert (config.lr, config.batch_size, config.optimizer) == (0.003, 128, "adamw")
        assert config.epochs == BASE_EPOCHS + 1
        await wait_for(pilot, lambda: not app.session.busy, timeout=60)
        info = best_runs()[0]
        assert info.state == "finished" and info.epochs_completed == BASE_EPOCHS + 1


async def test_start_a_search_from_the_form_and_watch_it_end(
    tmp_path: Path, tiny: ImageData
) -> None:
    runs = tmp_path / "runs"
    app = make_app(runs, tiny, study=None)  # watches the newest study
    app.config = TrainConfig.from_dict(
        {"epochs": 1, "train_subset": 600, "test_subset": 200}, base=app.config
    )
    notes = Notifications()
    async with app.run_test(size=(80, 24), message_hook=notes) as pilot:
        await pilot.press("6")
        pane = app.query_one(SearchPane)
        await wait_for(pilot, lambda: pane.reads > 0)
        assert "No study yet in" in shown(pane.query_one("#search-header"))
        assert "n starts a search" in shown(pane.query_one("#search-hint"))
        await pilot.press("b")
        assert any("No study yet" in n for n in notes)

        # A study with no trial yet: nothing to open or train.
        create_study(app.config, SearchSpace.from_table(SPACE), SearchOptions("empty", 2))
        await wait_for(pilot, lambda: "empty" in shown(pane.query_one("#search-header")))
        assert "No trial yet" in shown(app.query_one("#search-detail"))
        await pilot.press("b", "o")
        assert any("has completed yet" in n for n in notes)
        assert any("No trial here yet" in n for n in notes)

        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, SearchPrompt))
        prompt = app.screen
        note = prompt.query_one("#search-prompt-note")
        # The space searched is the form's (the default with none marked), listed.
        assert "log-uniform" in shown(prompt.query_one("#search-prompt-space"))
        # A grid over ranges, a name that cannot be a file's: said, and enter refused.
        sampler = prompt.query_one("#search-sampler", Select)
        sampler.value = "grid"
        await wait_for(pilot, lambda: "grid sampler needs a list" in shown(note))
        sampler.value = "tpe"
        study = prompt.query_one("#search-study", Input)
        study.value = "bad name!"
        await wait_for(pilot, lambda: "study:" in shown(note))
        study.focus()
        await pilot.press("enter")
        assert app.screen is prompt
        # An existing study's name: its own space and epochs are shown, and used.
        study.value = "empty"
        await wait_for(pilot, lambda: "carries it on" in shown(note))
        assert "its own settings" in shown(note)
        listed = shown(prompt.query_one("#search-prompt-space"))
        assert all(line in listed for line in SearchSpace.from_table(SPACE).lines())
        assert prompt.query_one("#search-epochs", Input).disabled
        study.value = "tiny"
        prompt.query_one("#search-trials", Input).value = "2"
        await wait_for(pilot, lambda: "A new study, tiny: 2 trials" in shown(note))
        await pilot.press("enter")
        await wait_for(pilot, lambda: pane.study == "tiny", timeout=30)
        try:
            await wait_for(pilot, lambda: pane.search_pid is not None, timeout=30)
            await wait_for(
                pilot,
                lambda: sum(r.state in ("complete", "pruned") for r in pane.rows) == 2,
                timeout=120,
            )
            await wait_for(pilot, lambda: pane.search_pid is None, timeout=60)
            # The notice comes with the pane's next read after the process ends.
            await wait_for(pilot, lambda: any("The search of study tiny ended" in n for n in notes))
            # Carried on from a form whose settings now differ: the study's own are used,
            # so it starts (and ends at once: it has its 2 finished trials).
            app.config = TrainConfig.from_dict({"epochs": 3}, base=app.config)
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, SearchPrompt))
            app.screen.query_one("#search-study", Input).value = "tiny"
            app.screen.query_one("#search-trials", Input).value = "2"
            await wait_for(pilot, lambda: "carries it on" in shown(
                app.screen.query_one("#search-prompt-note")))  # fmt: skip
            await pilot.press("enter")
            started = lambda: sum("runs in the background" in n for n in notes)  # noqa: E731
            refused = lambda: [n for n in notes if "other settings" in n]  # noqa: E731
            await wait_for(pilot, lambda: started() == 2 or refused(), timeout=30)
            assert not refused() and started() == 2
            await wait_for(pilot, lambda: search_process(runs, "tiny") is None, timeout=60)
        finally:
            pid = search_process(runs, "tiny")
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        rows = study_rows(runs, "tiny")
        assert [r.number for r in rows] == [0, 1]
        assert all(r.run_id and (runs / r.run_id).is_dir() for r in rows)

        # l picks the study to watch, newest first, with its finished trials and best.
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, StudyPicker))
        picker = app.screen
        await wait_for(pilot, lambda: len(picker.summaries) == 2)
        assert picker.summaries["tiny"].startswith("2 finished trials")
        assert picker.summaries["empty"] == "0 finished trials, no complete trial"
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: "empty" in shown(pane.query_one("#search-header")))


# --- snapshots (``--snapshot-update``) ----------------------------------------------------


@pytest.fixture
def snapshot_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Study ``demo`` (no run trained) under a relative runs folder, so nothing on the
    screen depends on where the test runs."""
    monkeypatch.chdir(tmp_path)
    make_study(Path("runs"))
    return Path("runs")


def charts_drawn(*keys: str):
    """Wait for the study's trials and space, press ``keys``, and draw the charts shown
    (they draw on a timer otherwise)."""

    async def run_before(pilot: Pilot) -> None:
        pane = pilot.app.query_one(SearchPane)
        await trials_shown(pilot, 5)
        await wait_for(pilot, lambda: pane.space is not None)
        await pilot.press(*keys)
        for plot in pilot.app.query(TrialsPlot):
            if plot.display:
                plot.redraw_now()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize(("size", "keys"), [((80, 24), ()), ((120, 40), ("v",))],
                         ids=["80x24", "120x40"])  # fmt: skip
def test_search_pane_snapshot(
    snap_compare,
    snapshot_study: Path,
    tiny: ImageData,
    size: tuple[int, int],
    keys: tuple[str, ...],
) -> None:
    app = make_app(snapshot_study, tiny)
    assert snap_compare(app, terminal_size=size, run_before=charts_drawn(*keys))
