"""Measure the conv models on this machine: training throughput, and runs to a target.

``speed``: samples/s of one training step (forward, backward, AdamW step) of each
candidate model on random 28 x 28 grey batches, with and without channels_last::

    flock /tmp/p12/cpu.lock .venv/bin/python scripts/bench_cnn.py speed --batch 128

``train``: a real training run on Fashion-MNIST through the engine's own loop
(``engine.loop.prepare`` and ``train_epoch``, as ``fmnist-tui train`` trains), each epoch
evaluated on the validation and the test split, plain and with flip-TTA
(``engine.models.predict_logits``); prints one line per epoch with the training clock
and the wall time since the process started (data loading and imports included)::

    flock /tmp/p12/cpu.lock .venv/bin/python scripts/bench_cnn.py train --preset resnet --seed 0

Settings after ``--set`` override the preset (``--set epochs=3 lr=0.002``). With
``--json FILE`` the epochs are also written as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

START = time.perf_counter()


def speed(args: argparse.Namespace) -> None:
    import torch

    from engine.config import TrainConfig
    from engine.models import build_model

    torch.manual_seed(0)
    candidates = {
        "cnn 32,64 fc128": TrainConfig(model="cnn", conv_channels=(32, 64), hidden_sizes=(128,)),
        "cnn 16,32 fc128": TrainConfig(model="cnn", conv_channels=(16, 32), hidden_sizes=(128,)),
        "cnn 32,64,128 fc128": TrainConfig(
            model="cnn", conv_channels=(32, 64, 128), hidden_sizes=(128,)
        ),
        "resnet 16,32,64": TrainConfig(model="resnet", conv_channels=(16, 32, 64)),
        "resnet 24,48,96": TrainConfig(model="resnet", conv_channels=(24, 48, 96)),
        "resnet 32,64,128": TrainConfig(model="resnet", conv_channels=(32, 64, 128)),
    }
    chosen = [c for c in candidates if not args.only or any(o in c for o in args.only)]
    x = torch.randn(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    xe = torch.randn(1000, 1, 28, 28)
    rates: dict[tuple[str, bool], list[tuple[float, float]]] = {}
    # Rounds interleave the candidates, so a slow spell of this shared machine falls on
    # all of them; the median of the rounds is reported.
    for _round in range(args.rounds):
        for name in chosen:
            for channels_last in (False, True):
                rates.setdefault((name, channels_last), []).append(
                    _rates(candidates[name], channels_last, x, y, xe, args.seconds)
                )
    for (name, channels_last), values in rates.items():
        train_rate = statistics.median(v[0] for v in values)
        eval_rate = statistics.median(v[1] for v in values)
        params = sum(p.numel() for p in build_model(candidates[name]).parameters())
        print(
            f"{name:<22} channels_last={channels_last!s:<5} params {params:>9,} "
            f"train {train_rate:7.0f}/s  eval {eval_rate:7.0f}/s  "
            f"epoch of 54k ~{54000 / train_rate:5.1f} s  "
            f"(train rounds: {', '.join(f'{v[0]:.0f}' for v in values)})",
            flush=True,
        )


def _rates(
    config: object, channels_last: bool, x: object, y: object, xe: object, seconds: float
) -> tuple[float, float]:
    """(training samples/s, evaluation samples/s) of a fresh model of ``config``."""
    import torch

    from engine.config import TrainConfig
    from engine.models import build_model

    assert isinstance(config, TrainConfig)
    assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
    assert isinstance(xe, torch.Tensor)
    model = build_model(config)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        xe = xe.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    train_rate = n * x.shape[0] / (time.perf_counter() - t0)
    model.eval()
    with torch.inference_mode():
        model(xe)
        t0 = time.perf_counter()
        model(xe)
        model(xe)
        eval_rate = 2 * xe.shape[0] / (time.perf_counter() - t0)
    return train_rate, eval_rate


def train(args: argparse.Namespace) -> None:
    import torch

    from engine.config import FIELDS, TrainConfig, preset
    from engine.control import RunControl
    from engine.fields import parse_field
    from engine.loop import Stopwatch, close_epoch, prepare, train_epoch
    from engine.models import predict_logits
    from engine.trainer import load_data

    config = preset(args.preset)
    changes = {"seed": args.seed}
    for item in args.set or []:
        key, _, text = item.partition("=")
        changes[key] = parse_field(FIELDS[key], text)
    config = TrainConfig.from_dict({**config.to_dict(), **changes})
    print(config.to_json().replace("\n", " "), flush=True)
    data = load_data(config)
    parts, state = prepare(config, data)
    print(
        f"setup {time.perf_counter() - START:.1f} s, precision {parts.config.precision}, "
        f"threads {torch.get_num_threads()}",
        flush=True,
    )
    control = RunControl()
    clock = Stopwatch()

    def accuracy(split: object, tta: bool) -> float:
        parts.model.eval()
        correct = total = 0
        with torch.inference_mode():
            for x, labels in split.batches(1000):  # type: ignore[attr-defined]
                logits = predict_logits(parts.model, x, tta=tta)
                correct += int((logits.argmax(1) == labels).sum())
                total += labels.shape[0]
        parts.model.train()
        return correct / max(total, 1)

    for _ in range(config.epochs):
        t0 = clock.seconds
        train_epoch(parts, state, emit=lambda _e: None, control=control, clock=clock)
        event = close_epoch(parts, state, epoch_seconds=clock.seconds - t0, batches=0)
        train_clock = clock.seconds  # includes the loop's own evaluation, as a run's does
        wall = time.perf_counter() - START
        clock.pause()  # the TTA evaluations are extra, not part of a run's time
        row = {
            "preset": args.preset,
            "seed": args.seed,
            "set": args.set or [],
            "epoch": event.epoch,
            "train_clock": round(train_clock, 1),
            "wall": round(wall, 1),
            "train_loss": round(event.train_loss, 4),
            "val": event.val_accuracy,
            "test": event.test_accuracy,
        }
        if args.tta:
            row["val_tta"] = accuracy(parts.val_data, True) if parts.val_data else None
            row["test_tta"] = accuracy(parts.test_data, True)
        clock.resume()
        print(
            " ".join(
                f"{k}={v:.4f}"
                if isinstance(v, float) and k not in ("train_clock", "wall")
                else f"{k}={v}"
                for k, v in row.items()
                if k not in ("preset", "set")
            ),
            flush=True,
        )
        if args.json:
            with open(args.json, "a") as out:
                out.write(json.dumps(row) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed", help="training-step samples/s of the candidate models")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", nargs="*", help="candidates whose name contains any of these")
    p = sub.add_parser("train", help="train a preset, evaluating each epoch (plain and TTA)")
    p.add_argument("--preset", default="cnn")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", nargs="*", help="setting=value overrides")
    p.add_argument("--tta", action="store_true", help="also evaluate with flip-TTA")
    p.add_argument("--json", help="append one JSON line per epoch here")
    args = parser.parse_args(argv)
    {"speed": speed, "train": train}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
