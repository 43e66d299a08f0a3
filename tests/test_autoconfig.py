"""Data fingerprint, settings chosen from it, the step budget and the health checks."""

import time
import warnings

import numpy as np
import pytest
import torch

from napari_lazyunet.api import LazyUNet, make_labels
from napari_lazyunet.config import LazyUNetConfig, TrainConfig
from napari_lazyunet.core.autoconfig import (
    TARGET_DIAMETER,
    choose_settings,
    configure_training,
    receptive_field,
)
from napari_lazyunet.core.fingerprint import DataFingerprint, measure_fingerprint
from napari_lazyunet.core.health import TrainingHealthWarning, health_messages
from napari_lazyunet.core.normalize import normalization_bounds
from napari_lazyunet.core.schedule import StepBudget

CPU = torch.device("cpu")


def discs(shape, centres, radius, bright=True):
    """Gray image with discs, their instance labels and inner regions (half the radius)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    rng = np.random.default_rng(0)
    image = rng.normal(100, 5, shape)
    instances = np.zeros(shape, np.int32)
    inner = np.zeros(shape, np.uint8)
    for k, (cy, cx) in enumerate(centres, start=1):
        d = np.hypot(yy - cy, xx - cx)
        instances[d <= radius] = k
        inner[d <= radius / np.sqrt(2)] = 1  # half the area
        image[d <= radius] += 80 if bright else -80
    return image.astype(np.float32), instances, inner


def test_fingerprint_measures_size_touching_and_polarity():
    centres = [(30, 30), (30, 90), (90, 30), (90, 90)]
    image, instances, inner = discs((128, 128), centres, radius=20)
    dark, _, dark_inner = discs((128, 128), centres, radius=20, bright=False)
    labels = make_labels(
        3,
        detection=[inner, inner, dark_inner],
        segmentation=[(instances > 0).astype(np.uint8), None, None],
    )
    fp = measure_fingerprint([image, image, dark], labels, n_classes=1, in_channels=1)
    assert fp.n_images == 3 and fp.n_strong == 1 and fp.n_with_inner == 3
    # The exact masks are twice their inner regions, so objects are measured at full size.
    assert fp.area_ratio_measured and fp.area_ratio == pytest.approx(2.0, rel=0.05)
    assert fp.diameter_median == pytest.approx(40, rel=0.05)
    assert fp.objects_per_image == 4
    assert fp.touching_fraction == 0  # separate discs
    assert (fp.bright_images, fp.dark_images) == (2, 1)
    assert fp.polarity == "bright"  # one dark image is not yet a mix (needs two)
    assert DataFingerprint.from_dict(fp.to_dict()) == fp
    assert any("diameter 40 px" in line for line in fp.describe())


def test_mixed_polarity_turns_on_inversion_and_size_sets_the_scale():
    centres = [(40, 40), (40, 120), (120, 40), (120, 120)]
    bright, instances, inner = discs((160, 160), centres, radius=30)
    dark, _, _ = discs((160, 160), centres, radius=30, bright=False)
    images = [bright, bright, dark, dark]
    labels = make_labels(
        4, detection=[inner] * 4, segmentation=[(instances > 0).astype(np.uint8)] + [None] * 3
    )
    config = LazyUNetConfig().replace(model={"class_names": ("disc",)})
    fp = measure_fingerprint(images, labels, 1, 1)
    assert fp.polarity == "mixed"
    resolved, choices = choose_settings(config, fp, CPU)
    assert resolved.train.invert_intensity == 0.5
    # Small objects are never enlarged.
    tiny = measure_fingerprint(images, labels, 1, 1).__class__(
        **{**fp.to_dict(), "diameter_median": 10.0}
    )
    assert choose_settings(config, tiny, CPU)[0].predict.input_scale == 1.0
    # Objects of 60 px are brought to the target size.
    assert resolved.predict.input_scale == pytest.approx(TARGET_DIAMETER / 60, rel=0.05)
    depth = resolved.model.depth
    assert receptive_field(depth) >= 4 * 30 > receptive_field(depth - 1)
    assert resolved.train.patch_size % 2**depth == 0 and resolved.train.patch_size >= 64
    assert resolved.model.is_resolved and resolved.train.steps is None
    chosen = {c.field for c in choices}
    assert {
        "model.base_channels",
        "model.depth",
        "train.patch_size",
        "predict.input_scale",
        "predict.min_instance_size",
        "train.time_budget",
    } <= chosen
    assert all(c.reason for c in choices)


def test_user_settings_are_never_changed():
    image, instances, inner = discs((128, 128), [(40, 40), (80, 90)], radius=20)
    labels = make_labels(1, detection=[inner], segmentation=[(instances > 0).astype(np.uint8)])
    config = LazyUNetConfig().replace(
        model={"class_names": ("a",), "base_channels": 12, "depth": 2},
        train={"patch_size": 48, "steps": 5, "learning_rate": 0.01},
        predict={"input_scale": 1.0, "min_instance_size": 3},
        normalization={"min_range": (0.0,)},
    )
    resolved, _fingerprint, choices = configure_training(config, [image], labels, CPU)
    for section, key in [
        ("model", "base_channels"),
        ("model", "depth"),
        ("train", "patch_size"),
        ("train", "steps"),
        ("train", "learning_rate"),
        ("predict", "input_scale"),
        ("predict", "min_instance_size"),
        ("normalization", "min_range"),
    ]:
        assert getattr(getattr(resolved, section), key) == getattr(getattr(config, section), key)
    assert "train.time_budget" not in {c.field for c in choices}  # steps were given
    # A second call on the completed configuration chooses nothing more.
    again, _, more = configure_training(resolved, [image], labels, CPU)
    assert again == resolved and more == []


def test_normalisation_floor_keeps_an_empty_image_dark():
    image, instances, inner = discs((128, 128), [(40, 40), (80, 90)], radius=20)
    labels = make_labels(1, detection=[inner], segmentation=[(instances > 0).astype(np.uint8)])
    config = LazyUNetConfig().replace(model={"class_names": ("a",)})
    resolved, _, _ = configure_training(config, [image], labels, CPU)
    empty = np.random.default_rng(1).normal(100, 1, (128, 128)).astype(np.float32)
    lo, hi = normalization_bounds(empty, resolved.normalization, 1)
    plain_lo, plain_hi = normalization_bounds(empty, LazyUNetConfig().normalization, 1)
    # Without the floor, noise alone spans the full 0..1 range; with it, far less.
    floor = resolved.normalization.min_range[0]
    assert (hi - lo).item() == pytest.approx(floor, rel=1e-4)
    assert floor > 2 * (plain_hi - plain_lo).item()


def test_step_budget_fits_steps_into_the_time_and_fixed_steps_stay():
    assert StepBudget(TrainConfig(steps=7), time.perf_counter()).update(3) == 7
    started = time.perf_counter()
    budget = StepBudget(TrainConfig(time_budget=0.02), started)  # 1.2 s
    done = 0
    while done < budget.update(done) if done else True:
        time.sleep(0.02)
        done += 1
        budget.update(done)
        if done > 500:
            break
    elapsed = time.perf_counter() - started
    assert 20 <= done <= 80
    assert elapsed <= 1.2 + 0.2


def test_health_messages_name_the_cause():
    config = LazyUNetConfig().replace(
        model={"class_names": ("a",), "base_channels": 4, "depth": 2},
        predict={"segmentation_threshold": 0.05},
    )
    history = [{"loss": 1.0}] * 50
    messages = health_messages(
        history,
        40,
        config,
        {"segmentation": 0.1},
        n_strong=1,
        interfaces_labelled=False,
        size_spread=6.0,
        grid_floor=0.05,
    )
    text = " | ".join(messages)
    assert "only 40 training steps" in text
    assert "barely fell" in text
    assert "never became confident" in text
    assert "no interface" in text and "not used to cut" in text
    assert "segmentation threshold is at the bottom" in text
    assert "too few" in text
    good = [{"loss": 1.0 - 0.9 * i / 400} for i in range(400)]
    assert (
        health_messages(
            good,
            400,
            config.replace(predict={"segmentation_threshold": None}),
            {"segmentation": 0.9, "detection": 0.95},
            n_strong=3,
            interfaces_labelled=True,
            size_spread=2.0,
            grid_floor=0.05,
        )
        == []
    )


def test_fit_without_settings_configures_warns_and_skips_the_untrained_cut(tmp_path):
    image, instances, inner = discs((96, 96), [(30, 30), (60, 66)], radius=14)
    model = LazyUNet(class_names=("disc",), in_channels=1)
    assert model.network is None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(
            [image, image],
            detection=[inner, inner],
            segmentation=[(instances > 0).astype(np.uint8), None],
            steps=3,
            num_threads=1,
            checkpoint=tmp_path / "during.pt",
        )
    health = [str(w.message) for w in caught if issubclass(w.category, TrainingHealthWarning)]
    assert any("no interface" in m for m in health)  # no scribble was painted
    assert any("only 3 training steps" in m for m in health)
    assert model.config.model.is_resolved and model.fingerprint is not None
    assert model.config.predict.separate_touching is False
    model.save(tmp_path / "m.pt")
    loaded = LazyUNet.load(tmp_path / "m.pt")
    assert loaded.fingerprint == model.fingerprint
    assert [c.field for c in loaded.choices] == [c.field for c in model.choices]
    assert loaded.config.predict.separate_touching is False
    # The file that training kept up to date says the same.
    during = LazyUNet.load(tmp_path / "during.pt")
    assert during.fingerprint == model.fingerprint and len(during.choices) == len(model.choices)


def test_training_restores_the_callers_thread_count():
    image, instances, inner = discs((64, 64), [(30, 30)], radius=12)
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    model = LazyUNet(class_names=("disc",), base_channels=4, depth=2)
    model.fit(
        [image],
        detection=[inner],
        segmentation=[(instances > 0).astype(np.uint8)],
        steps=1,
        num_threads=target,
        patch_size=32,
        batch_size=2,
    )
    assert torch.get_num_threads() == before


def test_detection_threshold_sets_the_seeds_and_is_only_ever_lowered():
    from napari_lazyunet.core.calibrate import (
        THRESHOLD_GRID,
        calibrate_detection_threshold,
        calibration_sampler,
    )
    from napari_lazyunet.core.training_set import prepare_set

    image, instances, inner = discs((64, 64), [(20, 20), (44, 44)], radius=12)
    model = LazyUNet(class_names=("disc",), base_channels=4, depth=2)
    model.fit(
        [image],
        detection=[inner],
        segmentation=[(instances > 0).astype(np.uint8)],
        steps=3,
        num_threads=1,
        patch_size=32,
        batch_size=2,
    )
    prepared = prepare_set([image], make_labels(1, detection=[inner]), model.config)
    threshold = calibrate_detection_threshold(
        model.network, calibration_sampler(prepared, model.config.train, 9), CPU, 2
    )
    assert threshold is None or threshold in THRESHOLD_GRID[:-1]
    result = model.predict(image, detection_threshold=0.05)
    objects = 1 - result.probabilities["detection"][0]
    np.testing.assert_array_equal(result.detection > 0, objects > 0.05)
    argmax = model.predict(image, detection_threshold=None)
    assert (argmax.detection > 0).sum() <= (result.detection > 0).sum()


class _FixedDetection(torch.nn.Module):
    """A detection head whose object probability is ``inside`` on the painted inner regions
    and ``outside`` elsewhere (it reads them off the input, where they are bright)."""

    tasks = ("detection",)

    def __init__(self, inside: float, outside: float):
        super().__init__()
        self.inside, self.outside = inside, outside

    def forward(self, x):
        p = torch.where(x[:, :1] > 0.5, self.inside, self.outside)
        return {"detection": torch.log(torch.cat([1 - p, p], dim=1))}


def test_detection_threshold_rescues_only_an_unsure_head():
    from napari_lazyunet.core.calibrate import calibrate_detection_threshold, calibration_sampler
    from napari_lazyunet.core.training_set import prepare_set

    _, _, inner = discs((64, 64), [(20, 20), (44, 44)], radius=12)
    image = (inner > 0).astype(np.float32)  # the head sees the inner regions as bright
    config = LazyUNet(class_names=("disc",), base_channels=4, depth=2).config.replace(
        train={"patch_size": 32, "batch_size": 2, "seed": 0}, normalization={"mode": "none"}
    )
    prepared = prepare_set([image], make_labels(1, detection=[inner]), config)

    def threshold(inside, outside):
        sampler = calibration_sampler(prepared, config.train, 1)
        return calibrate_detection_threshold(_FixedDetection(inside, outside), sampler, CPU, 4)

    # Calls every inner pixel object at 0.5: the argmax stays the seed rule.
    assert threshold(0.9, 0.05) is None
    # Ranks inner pixels right but below 0.5: seeds come from a lower threshold.
    rescued = threshold(0.3, 0.05)
    assert rescued is not None and 0.05 <= rescued < 0.3
