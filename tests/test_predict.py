"""Tiled prediction: blending, sizes, stacks, channels."""

import numpy as np
import pytest
import torch

from napari_lazyunet.config import ModelConfig, NormalizationConfig, PredictConfig
from napari_lazyunet.core.labels import LabelError
from napari_lazyunet.core.model import build_model
from napari_lazyunet.core.predict import iter_plane_probabilities, iter_predict, predict
from napari_lazyunet.core.tiling import gaussian_weight, tile_grid

CPU = torch.device("cpu")


def _model(channels=1, depth=2):
    torch.manual_seed(0)
    return build_model(ModelConfig(in_channels=channels, base_channels=4, depth=depth)).eval()


def _probs(model, plane, tile, overlap=0.5):
    config = PredictConfig(tile_size=tile, overlap=overlap, batch_size=3)
    *_, (_, _, out) = iter_plane_probabilities(model, plane, config, CPU)
    return out


def test_tile_grid_covers_image_and_gaussian_peaks_in_centre():
    corners = tile_grid((100, 70), (32, 32), 0.25)
    covered = np.zeros((100, 70), bool)
    for y, x in corners:
        covered[y : y + 32, x : x + 32] = True
    assert covered.all()
    w = gaussian_weight((32, 32))
    assert w.argmax() in (
        np.ravel_multi_index((15, 15), w.shape),
        np.ravel_multi_index((16, 16), w.shape),
    )
    assert w.min() > 0


def test_tiled_equals_whole_image_away_from_borders(rng):
    """With a small receptive field, tiles agree with one whole-image pass in the interior."""
    model = _model(depth=1)  # receptive field of a few pixels
    plane = rng.random((1, 96, 128)).astype(np.float32)
    whole = _probs(model, plane, tile=128 * 2)  # one tile holds the whole image
    tiled = _probs(model, plane, tile=48, overlap=0.5)
    inner = (slice(None), slice(8, -8), slice(8, -8))
    for task in whole:
        diff = np.abs(whole[task][inner] - tiled[task][inner])
        assert diff.mean() < 1e-3, task
        assert diff.max() < 0.05, task


def test_probabilities_sum_to_one_and_small_images_work(rng):
    model = _model()
    for shape in [(10, 13), (64, 64), (70, 150)]:
        probs = _probs(model, rng.random((1, *shape)).astype(np.float32), tile=64)
        for task, p in probs.items():
            assert p.shape[1:] == shape
            np.testing.assert_allclose(p.sum(0), 1.0, atol=1e-4, err_msg=task)


def _predict(model, image, channels=1):
    return predict(
        model,
        image,
        in_channels=channels,
        normalization=NormalizationConfig(),
        config=PredictConfig(tile_size=32, overlap=0.25),
        device=CPU,
    )


def test_stack_is_predicted_plane_by_plane(rng):
    model = _model()
    stack = rng.random((3, 40, 50)).astype(np.float32)
    result = _predict(model, stack)
    assert result.segmentation.shape == (3, 40, 50) and result.segmentation.dtype == np.uint8
    assert result.instances.shape == (3, 40, 50) and result.instances.dtype == np.int32
    assert result.probabilities["separation"].shape == (3, 2, 40, 50)
    single = _predict(model, stack[1])
    np.testing.assert_allclose(
        result.probabilities["segmentation"][1], single.probabilities["segmentation"], atol=1e-5
    )


def test_rgb_and_multichannel(rng):
    rgb = rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)
    result = _predict(_model(channels=3), rgb, channels=3)
    assert result.segmentation.shape == (40, 30)
    assert result.detection.shape == (40, 30) and result.separation.shape == (40, 30)
    with pytest.raises(LabelError, match="looks like RGB"):
        _predict(_model(), rgb)


def test_progress_events_and_result_only_at_end(rng):
    events = list(
        iter_predict(
            _model(),
            rng.random((100, 100)),
            in_channels=1,
            normalization=NormalizationConfig(),
            config=PredictConfig(tile_size=32, overlap=0.25, batch_size=2),
            device=CPU,
        )
    )
    assert len(events) > 2
    assert all(e.result is None for e in events[:-1]) and events[-1].result is not None
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_input_not_modified(rng):
    image = rng.random((33, 33)).astype(np.float32)
    before = image.copy()
    _predict(_model(), image)
    np.testing.assert_array_equal(image, before)


def test_large_planes_are_predicted_block_by_block_with_the_same_labels(rng):
    """Block mode (bounded memory) gives the labels of the whole-plane tiling."""
    model = _model(depth=1)
    image = rng.random((150, 170)).astype(np.float32)

    def run(block):
        return predict(
            model,
            image,
            in_channels=1,
            normalization=NormalizationConfig(),
            config=PredictConfig(tile_size=32, overlap=0.5, block_size=block),
            device=CPU,
        )

    whole, blocks = run(4096), run(64)
    assert whole.probabilities and not blocks.probabilities  # blocks keep only label maps
    for task in ("segmentation", "detection", "separation"):
        agree = (getattr(whole, task) == getattr(blocks, task)).mean()
        assert agree > 0.99, (task, agree)


def _predict_gray(model, image, block_size, **options):
    """Predict a gray image with 32-pixel tiles, block by block when larger than ``block_size``."""
    config = PredictConfig(tile_size=32, overlap=0.5, block_size=block_size, **options)
    return predict(
        model, image, in_channels=1, normalization=NormalizationConfig(), config=config, device=CPU
    )


def test_separation_threshold_decides_interfaces_in_both_prediction_paths(rng):
    """Interface pixels are those above the threshold; a lower one adds pixels, removes none."""
    model = _model(depth=1)
    image = rng.random((150, 170)).astype(np.float32)

    def run(threshold, block=4096):
        return _predict_gray(model, image, block, separation_threshold=threshold)

    default = run(0.5)
    interface = default.probabilities["separation"][1]
    low, high = (float(np.quantile(interface, q)) for q in (0.3, 0.7))
    loose, strict = run(low), run(high)
    np.testing.assert_array_equal(loose.separation, interface > low)
    np.testing.assert_array_equal(strict.separation, interface > high)
    assert strict.separation.sum() < loose.separation.sum()
    assert not np.any(strict.separation & ~loose.separation)
    # Block by block (no probabilities kept) the same threshold applies.
    agree = (run(low, block=64).separation == loose.separation).mean()
    assert agree > 0.99


def test_segmentation_map_argmax_or_object_probability_threshold():
    from napari_lazyunet.core.predict import segmentation_map

    # Three pixels, classes background / 1 / 2.
    probs = np.array([[0.45, 0.7, 0.2], [0.30, 0.2, 0.3], [0.25, 0.1, 0.5]], np.float32)
    probs = probs[:, None, :]  # (K, 1, 3)
    np.testing.assert_array_equal(segmentation_map(probs), [[0, 0, 2]])
    # Threshold 0.5: pixel 0 is 55 % object, so it becomes its likeliest object class.
    np.testing.assert_array_equal(segmentation_map(probs, 0.5), [[1, 0, 2]])
    np.testing.assert_array_equal(segmentation_map(probs, 0.25), [[1, 1, 2]])
    np.testing.assert_array_equal(segmentation_map(probs, 0.9), [[0, 0, 0]])


def test_segmentation_threshold_decides_objects_in_both_prediction_paths(rng):
    model = _model(depth=1)
    image = rng.random((150, 170)).astype(np.float32)

    def run(threshold, block=4096):
        return _predict_gray(model, image, block, segmentation_threshold=threshold)

    default = run(None)
    objects = 1 - default.probabilities["segmentation"][0]
    np.testing.assert_array_equal(
        default.segmentation, default.probabilities["segmentation"].argmax(0)
    )
    low, high = (float(np.quantile(objects, q)) for q in (0.3, 0.7))
    loose, strict = run(low), run(high)
    np.testing.assert_array_equal(loose.segmentation > 0, objects > low)
    np.testing.assert_array_equal(strict.segmentation > 0, objects > high)
    assert (strict.segmentation > 0).sum() < (loose.segmentation > 0).sum()
    agree = (run(low, block=64).segmentation == loose.segmentation).mean()
    assert agree > 0.99


def test_block_mode_reads_a_memory_map_without_loading_it(tmp_path, rng):
    path = tmp_path / "big.npy"
    data = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=(130, 140))
    data[:] = rng.integers(0, 4000, data.shape)
    data.flush()
    mapped = np.load(path, mmap_mode="r")
    result = predict(
        _model(),
        mapped,
        in_channels=1,
        normalization=NormalizationConfig(),
        config=PredictConfig(tile_size=32, block_size=64),
        device=CPU,
    )
    assert result.segmentation.shape == (130, 140) and result.instances.shape == (130, 140)


def _smooth(rng, shape):
    import cv2

    return cv2.GaussianBlur(rng.random(shape).astype(np.float32), (0, 0), 3)


def test_input_scale_runs_the_network_at_the_model_resolution(rng):
    """A plane twice the model's resolution, at input_scale 0.5, gives the outputs of
    the plane at the model's resolution, enlarged to its own size."""
    import cv2

    model = _model(depth=1)
    image = _smooth(rng, (96, 128))
    large = cv2.resize(image, (256, 192), interpolation=cv2.INTER_LINEAR)

    def run(plane, scale):
        config = PredictConfig(tile_size=32, overlap=0.5, input_scale=scale)
        return predict(
            model,
            plane,
            in_channels=1,
            normalization=NormalizationConfig(),
            config=config,
            device=CPU,
        )

    small, scaled, unscaled = run(image, 1.0), run(large, 0.5), run(large, 1.0)
    for name in ("segmentation", "detection", "separation", "instances"):
        assert getattr(scaled, name).shape == (192, 256), name
    for task, probs in scaled.probabilities.items():
        assert probs.shape[1:] == (192, 256)
        back = np.stack([cv2.resize(p, (128, 96), interpolation=cv2.INTER_AREA) for p in probs])
        assert np.abs(back - small.probabilities[task]).mean() < 0.02, task
        # Without the scale the network sees other structures: the check above can fail.
        other = np.stack(
            [
                cv2.resize(p, (128, 96), interpolation=cv2.INTER_AREA)
                for p in unscaled.probabilities[task]
            ]
        )
        assert (
            np.abs(other - small.probabilities[task]).mean()
            > np.abs(back - small.probabilities[task]).mean()
        ), task


def test_input_scale_in_block_mode_gives_the_whole_plane_labels(rng):
    model = _model(depth=1)
    image = _smooth(rng, (150, 170))

    def run(block):
        config = PredictConfig(tile_size=32, overlap=0.5, block_size=block, input_scale=0.5)
        return predict(
            model,
            image,
            in_channels=1,
            normalization=NormalizationConfig(),
            config=config,
            device=CPU,
        )

    whole, blocks = run(4096), run(64)
    assert blocks.segmentation.shape == (150, 170)
    for task in ("segmentation", "detection", "separation"):
        agree = (getattr(whole, task) == getattr(blocks, task)).mean()
        assert agree > 0.99, (task, agree)


def test_the_inference_network_folds_batchnorm_and_gives_the_same_outputs(rng):
    from napari_lazyunet.core.inference import inference_network, input_layout

    model = _model(depth=2)
    model.train()
    # Non-trivial BatchNorm statistics, as after training.
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    fast = inference_network(model, CPU)
    assert model.training  # the model itself is untouched
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    x = torch.from_numpy(rng.random((2, 1, 48, 40)).astype(np.float32))
    with torch.inference_mode():
        expected = model.eval()(x)
        got = fast(x.contiguous(memory_format=input_layout(CPU)))
    for task in expected:
        torch.testing.assert_close(got[task], expected[task], atol=1e-4, rtol=1e-4)
