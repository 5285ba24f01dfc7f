"""The model registry's conv models (cnn, resnet), flip-TTA, and the conv presets."""

from __future__ import annotations

import pytest
import torch

from engine.config import MODELS, PRESETS, TrainConfig, preset
from engine.errors import ConfigError
from engine.inference import Predictor
from engine.loop import evaluate, prepare
from engine.models import build_model, predict_logits, summary, weights_mismatch
from tests.helpers import synthetic


def test_resnet_is_a_registered_model_and_the_cli_lists_it() -> None:
    assert "resnet" in MODELS
    assert TrainConfig(model="resnet").model == "resnet"
    with pytest.raises(ConfigError, match="one of mlp, cnn, resnet"):
        TrainConfig(model="resnet50")


@pytest.mark.parametrize("model", ["cnn", "resnet"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("shape", [(28, 28), (32, 20), (8, 8), (9, 15)])
def test_conv_models_take_grey_and_colour_images_of_any_size(
    model: str, channels: int, shape: tuple[int, int]
) -> None:
    config = TrainConfig(model=model, conv_channels=(8, 16, 32), hidden_sizes=(16,))
    net = build_model(config, shape, num_classes=7, channels=channels).eval()
    with torch.inference_mode():
        out = net(torch.rand(5, channels, *shape))
    assert out.shape == (5, 7)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("loss", ["cross_entropy", "nll", "mse"])
def test_the_resnet_ends_as_the_loss_needs(loss: str) -> None:
    net = build_model(TrainConfig(model="resnet", conv_channels=(8, 16), loss=loss)).eval()
    with torch.inference_mode():
        out = net(torch.rand(4, 1, 28, 28))
    if loss == "nll":
        torch.testing.assert_close(out.exp().sum(1), torch.ones(4))
    elif loss == "mse":
        torch.testing.assert_close(out.sum(1), torch.ones(4))
    else:
        assert not torch.allclose(out.exp().sum(1), torch.ones(4))


def test_resnet_widths_set_its_blocks_and_the_summary_lists_its_layers() -> None:
    small = summary(TrainConfig(model="resnet", conv_channels=(8, 16)))
    large = summary(TrainConfig(model="resnet", conv_channels=(8, 16, 32)))
    assert large.total_parameters > small.total_parameters
    assert small.total_parameters == small.trainable_parameters
    types = [layer.type for layer in large.layers]
    assert types.count("Conv2d") == 1 + 3 * 2 + 2  # stem, two per block, two 1x1 shortcuts
    assert "BatchNorm2d" in types and "AdaptiveAvgPool2d" in types
    assert large.layers[-1].type == "Linear"
    assert large.layers[-1].output_shape == (1, 10)
    # 28 -> 14 (stem pool) -> 14 -> 7 -> 4: the last block's output before pooling.
    last_conv = [layer for layer in large.layers if layer.type == "Conv2d"][-1]
    assert last_conv.output_shape == (1, 32, 4, 4)
    assert "total parameters" in large.format()


def test_a_resnet_checkpoint_fits_only_a_resnet_of_its_widths() -> None:
    config = TrainConfig(model="resnet", conv_channels=(8, 16))
    weights = build_model(config).state_dict()
    assert weights_mismatch(build_model(config), weights) is None
    wider = weights_mismatch(
        build_model(TrainConfig(model="resnet", conv_channels=(8, 24))), weights
    )
    assert wider is not None and "in the checkpoint" in wider
    assert weights_mismatch(build_model(TrainConfig(model="cnn")), weights) is not None


def test_conv_models_hold_channels_last_weights_and_keep_state_dicts_loadable() -> None:
    config = TrainConfig(model="cnn", conv_channels=(8, 16), hidden_sizes=(16,))
    net = build_model(config)
    conv = next(p for p in net.parameters() if p.ndim == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)
    # A state_dict saved from a plain (NCHW) model of the same settings loads and gives
    # the same outputs: the layout is memory only.
    plain = build_model(config).to(memory_format=torch.contiguous_format)
    torch.manual_seed(0)
    for p in plain.parameters():
        torch.nn.init.normal_(p)
    net.load_state_dict(plain.state_dict())
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(net.eval()(x), plain.eval()(x), rtol=1e-4, atol=1e-4)


def test_tta_averages_each_image_with_its_mirror() -> None:
    config = TrainConfig(model="resnet", conv_channels=(8, 16))
    torch.manual_seed(1)
    net = build_model(config, (12, 20)).eval()
    x = torch.rand(6, 1, 12, 20)
    with torch.inference_mode():
        plain = predict_logits(net, x, tta=False)
        both = predict_logits(net, x, tta=True)
        torch.testing.assert_close(plain, net(x))
        expected = (net(x) + net(x.flip(-1))) / 2
    assert both.shape == (6, 10)
    torch.testing.assert_close(both, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(both, plain)
    # A mirror-symmetric image is its own mirror: TTA changes nothing for it.
    symmetric = torch.cat([x[..., :10], x[..., :10].flip(-1)], dim=-1)
    with torch.inference_mode():
        torch.testing.assert_close(
            predict_logits(net, symmetric, tta=True),
            net(symmetric),
            rtol=1e-4,
            atol=1e-5,
        )


def test_tta_is_a_training_setting_off_by_default() -> None:
    assert TrainConfig().tta is False
    config = TrainConfig().with_text({"tta": "yes"})
    assert config.tta is True
    assert TrainConfig.from_stored({k: v for k, v in config.to_dict().items() if k != "tta"})
    with pytest.raises(ConfigError, match="tta: got 'maybe'; expected true or false"):
        TrainConfig().with_text({"tta": "maybe"})


@pytest.mark.parametrize("loss", ["cross_entropy", "nll"])
def test_prediction_with_tta_averages_the_mirror_and_sums_to_one(loss: str) -> None:
    config = TrainConfig(model="resnet", conv_channels=(8, 16), loss=loss, tta=True)
    torch.manual_seed(2)
    net = build_model(config).eval()
    predictor = Predictor(net, config, tuple("abcdefghij"), torch.device("cpu"))
    images = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8)
    with_tta = predictor.predict(images)
    plain_config = TrainConfig(model="resnet", conv_channels=(8, 16), loss=loss)
    without = Predictor(net, plain_config, predictor.classes, torch.device("cpu")).predict(images)
    torch.testing.assert_close(
        torch.from_numpy(with_tta.probabilities).sum(1), torch.ones(4), rtol=1e-5, atol=1e-5
    )
    assert not torch.allclose(
        torch.from_numpy(with_tta.probabilities), torch.from_numpy(without.probabilities)
    )
    # Mirroring the input swaps the two halves of the mean: the same prediction.
    flipped = Predictor(net, config, predictor.classes, torch.device("cpu")).predict(
        images.flip(-1)
    )
    torch.testing.assert_close(
        torch.from_numpy(flipped.probabilities),
        torch.from_numpy(with_tta.probabilities),
        rtol=1e-4,
        atol=1e-5,
    )


def test_a_resnet_trains_on_synthetic_data(tmp_path) -> None:
    import dataclasses

    from engine.control import RunControl
    from engine.loop import Stopwatch, train_epoch

    config = TrainConfig(
        model="resnet",
        conv_channels=(16, 32),
        epochs=8,
        batch_size=32,
        lr=1e-2,
        schedule="onecycle",
        device="cpu",
        val_fraction=0.0,
        runs_dir=str(tmp_path),
    )
    parts, state = prepare(config, synthetic(256, 128))
    before = evaluate(parts)
    for _ in range(config.epochs):
        assert train_epoch(
            parts, state, emit=lambda _e: None, control=RunControl(), clock=Stopwatch()
        )
        state.rng["epoch_start_shuffle"] = parts.shuffle_generator.get_state()
        state.batch = 0
    after = evaluate(parts)
    # The bars' rows tell the classes apart, which global pooling hides but for the
    # padding's edge: well above chance (10%) is what a few hundred images teach it.
    assert after.loss < before.loss - 0.5
    assert after.accuracy >= 0.5
    # The trained weights load into a predictor and predict as evaluation measured.
    predictor = Predictor(
        build_model(dataclasses.replace(config, tta=True)),
        dataclasses.replace(config, tta=True),
        tuple(str(i) for i in range(10)),
        torch.device("cpu"),
    )
    predictor.model.load_state_dict(parts.model.state_dict())
    predictor.model.eval()
    assert predictor.predict(parts.data.test.images).probabilities.shape == (128, 10)


@pytest.mark.parametrize("name", ["cnn", "resnet"])
def test_the_conv_presets_are_valid_and_chosen_without_the_test_split(name: str) -> None:
    config = preset(name)
    assert config.model == name
    assert config.val_fraction > 0  # tuned on the validation split, which chooses the best
    assert PRESETS[name]["model"] == name


def test_the_training_loop_evaluates_with_flip_tta_when_asked(tmp_path) -> None:
    """tta changes evaluation only: the same training, other test figures."""
    from engine.trainer import Trainer
    from tests.helpers import cfg, synthetic

    data = synthetic()
    plain = Trainer(cfg(tmp_path, epochs=1, tta=False), data=data, record=False).fit()
    flipped = Trainer(cfg(tmp_path, epochs=1, tta=True), data=data, record=False).fit()
    assert plain.history[-1].train_loss == flipped.history[-1].train_loss
    assert plain.history[-1].test_loss != flipped.history[-1].test_loss
