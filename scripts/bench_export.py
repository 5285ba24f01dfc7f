"""ONNX Runtime against PyTorch: prediction time for the test set, and the largest
difference in probabilities, for one run's exported model.

    python -m scripts.bench_export RUN [--runs-dir DIR] [--repeats 5] [--batch-size 1000]

Exports RUN's best model as ONNX (into a temporary folder), then, in this process, on the
run's whole test split (10,000 images for Fashion-MNIST) in batches of ``--batch-size``:

- ONNX Runtime (CPUExecutionProvider) on ``model.onnx``, softmax in numpy;
- PyTorch in float32 on the same network and input (``torch.inference_mode``);
- the run's ``Predictor.predict``, the engine's own path (in the precision the run
  trained in: bf16 autocast where ``auto`` chose it).

Each is timed ``--repeats`` times (after one warm-up pass; the images are already decoded
and scaled for the first two); the median is printed, with the largest absolute
difference of ONNX Runtime's probabilities from each PyTorch path's, and whether their
classes agree.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import numpy as np


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    """The median wall time of ``repeats`` calls of ``work``, after one warm-up call."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_export", description=__doc__)
    parser.add_argument("run", metavar="RUN", help="run folder or id")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3")

    import onnxruntime
    import torch

    from engine.data import model_input
    from engine.export import export_model
    from engine.identity import run_split_version
    from engine.inference import Predictor
    from engine.runs import Run
    from engine.trainer import load_data

    run = Run.open(args.run, args.runs_dir)
    predictor = Predictor.from_run(run)
    config = predictor.config
    images = load_data(config, test_only=True, split_version=run_split_version(run)).test.images
    batch = args.batch_size
    with tempfile.TemporaryDirectory() as folder:
        export_model(run, out_dir=folder, formats=["onnx"])
        session = onnxruntime.InferenceSession(
            f"{folder}/model.onnx", providers=["CPUExecutionProvider"]
        )
    x = model_input(torch.as_tensor(images), predictor.config.normalize)
    x_numpy = x.numpy()
    name = session.get_inputs()[0].name

    def onnx_probabilities() -> np.ndarray:
        parts = []
        for start in range(0, len(x_numpy), batch):
            logits = session.run(None, {name: x_numpy[start : start + batch]})[0]
            shifted = np.exp(logits - logits.max(1, keepdims=True))
            parts.append(shifted / shifted.sum(1, keepdims=True))
        return np.concatenate(parts)

    model = predictor.model.eval()
    tta = predictor.config.tta

    def torch_probabilities() -> np.ndarray:
        from engine.models import predict_logits, probabilities

        parts = []
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                logits = predict_logits(model, x[start : start + batch], tta=tta)
                parts.append(probabilities(logits, predictor.config.loss).numpy())
        return np.concatenate(parts)

    def engine_probabilities() -> np.ndarray:
        return predictor.predict(images, batch_size=batch).probabilities

    timings = {
        "ONNX Runtime": median_seconds(onnx_probabilities, args.repeats),
        "PyTorch fp32": median_seconds(torch_probabilities, args.repeats),
        f"Predictor.predict ({predictor.config.precision})": median_seconds(
            engine_probabilities, args.repeats
        ),
    }
    onnx, fp32, engine = onnx_probabilities(), torch_probabilities(), engine_probabilities()
    print(
        f"run {run.id}: {len(images):,} test images, batch {batch}, median of "
        f"{args.repeats}, onnxruntime {onnxruntime.__version__}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    for label, seconds in timings.items():
        print(f"  {label:<32} {seconds * 1000:8.1f} ms  ({len(images) / seconds:,.0f} images/s)")
    for label, other in (("PyTorch fp32", fp32), ("Predictor.predict", engine)):
        same = int((onnx.argmax(1) == other.argmax(1)).sum())
        print(
            f"  largest |ONNX - {label}| probability difference {np.abs(onnx - other).max():.2e}; "
            f"same class for {same:,} of {len(images):,}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
