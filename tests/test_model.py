"""Network shapes, the shared decoder, and the indicator loss."""

import pytest
import torch

from napari_lazyunet.config import ModelConfig
from napari_lazyunet.core.labels import IGNORE
from napari_lazyunet.core.losses import multitask_loss
from napari_lazyunet.core.model import MultiTaskUNet, UNet, build_model


@pytest.mark.parametrize("size", [(37, 53), (16, 16), (5, 7), (64, 33)])
@pytest.mark.parametrize("channels", [1, 3, 5])
def test_output_shapes_for_odd_sizes(size, channels):
    config = ModelConfig(
        in_channels=channels, class_names=("a", "b", "c"), base_channels=4, depth=3
    )
    model = build_model(config).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, *size))
    assert set(out) == {"detection", "segmentation", "separation"}
    assert out["detection"].shape == (2, 4, *size)
    assert out["segmentation"].shape == (2, 4, *size)
    assert out["separation"].shape == (2, 2, *size)


def test_baseline_has_same_encoder_and_one_head():
    config = ModelConfig(base_channels=4, depth=2, multitask=False)
    model = build_model(config)
    assert isinstance(model, UNet)
    multi = MultiTaskUNet(config)
    enc_shapes = [p.shape for p in model.encoder.parameters()]
    assert enc_shapes == [p.shape for p in multi.encoder.parameters()]
    out = model(torch.randn(1, 1, 20, 20))
    assert set(out) == {"segmentation"} and out["segmentation"].shape == (1, 3, 20, 20)


def test_detection_and_segmentation_share_decoder_weights():
    """Zeroing the residual sub-blocks makes z equal x (same F, same skip), as in the paper."""
    model = MultiTaskUNet(ModelConfig(base_channels=4, depth=2)).eval()
    with torch.no_grad():
        for block in model.residual:
            block[-3].weight.zero_()  # last conv of F_res
            block[-2].weight.zero_()  # its batch norm scale
            block[-2].bias.zero_()
        model.segmentation_head.load_state_dict(model.detection_head.state_dict())
        out = model(torch.randn(1, 1, 32, 32))
    torch.testing.assert_close(out["segmentation"], out["detection"])


def test_task_without_labels_gives_zero_gradient():
    torch.manual_seed(0)
    model = MultiTaskUNet(ModelConfig(base_channels=4, depth=2))
    out = model(torch.randn(2, 1, 32, 32))
    targets = torch.full((2, 3, 32, 32), IGNORE, dtype=torch.long)
    targets[:, 0] = torch.randint(0, 3, (2, 32, 32))  # only detection labelled
    total, parts = multitask_loss(out, targets)
    assert set(parts) == {"detection"}  # unlabelled tasks are not reported as a zero loss
    total.backward()
    for name in ("separation_head", "segmentation_head"):
        grad = getattr(model, name).weight.grad
        assert grad is not None and torch.count_nonzero(grad) == 0, name
    for block in model.separation:
        assert all(torch.count_nonzero(p.grad) == 0 for p in block.parameters())
    assert torch.count_nonzero(model.detection_head.weight.grad) > 0


def test_loss_counts_only_labelled_images():
    """The per-image indicator: an unlabelled image in the batch changes nothing."""
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 8, 8)
    target = torch.randint(0, 3, (2, 3, 8, 8))
    target[1] = IGNORE
    both, _ = multitask_loss({"detection": logits}, target)
    first, _ = multitask_loss({"detection": logits[:1]}, target[:1])
    torch.testing.assert_close(both, first)
