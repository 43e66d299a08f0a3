"""Speed of training and prediction against the machine's own limit, as ratios measured in one run.

Printed, each on the device it ran on:

- the machine's matrix-multiply rate (float32 ``torch.mm``, GFLOP/s) at the
  thread count used: the yardstick every other figure is compared with;
- a training step (forward, backward, Adam) of the multi-task U-Net and of
  the plain U-Net of the same width, at the sizes the engine chooses on a
  CPU (width 8, depth 4, 8 patches of 80 px, one gray class): seconds per
  step, FLOPs per step (``torch.utils.flop_counter``), achieved GFLOP/s and
  its share of the matrix-multiply rate, and the multi-task / plain ratios;
- inference of the multi-task network: one untiled forward pass, and the
  engine's tiled prediction of the same image (tiles, Gaussian blending,
  instances) in megapixels per second;
- a large image predicted block by block in a child process: wall time and
  peak resident memory (``--big``, 0 to skip).

Example (2-core CPU, a few minutes)::

    python benchmarks/speed.py --threads 2 --big 4000

With a CUDA device the same figures are printed for it too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from napari_lazyunet.api import LazyUNet
from napari_lazyunet.config import ModelConfig
from napari_lazyunet.core.inference import inference_network, input_layout
from napari_lazyunet.core.losses import multitask_loss
from napari_lazyunet.core.model import build_model


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """float32 matrix-multiply rate of ``device`` at the current thread count."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    torch.mm(a, b)  # warm-up
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _network(multitask: bool, width: int, depth: int, device: torch.device) -> torch.nn.Module:
    config = ModelConfig(
        class_names=("object",), base_channels=width, depth=depth, multitask=multitask
    )
    return build_model(config).to(device)


def train_step_figures(
    multitask: bool,
    width: int,
    depth: int,
    batch: int,
    patch: int,
    steps: int,
    device: torch.device,
) -> dict[str, float]:
    """Seconds and FLOPs of one training step (forward, backward, Adam)."""
    torch.manual_seed(0)
    model = _network(multitask, width, depth, device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, patch, patch, device=device)
    targets = torch.randint(0, 2, (batch, 3, patch, patch), device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = multitask_loss(model(x), targets)
        loss.backward()
        optimizer.step()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    for _ in range(2):  # warm-up
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = (time.perf_counter() - start) / steps
    flops = float(counter.get_total_flops())
    return {"s_per_step": seconds, "gflop_per_step": flops / 1e9, "gflops": flops / seconds / 1e9}


def inference_figures(width: int, depth: int, size: int, device: torch.device) -> dict[str, float]:
    """Megapixels per second: one untiled forward, and the engine's tiled prediction."""
    model = _network(True, width, depth, device).eval()
    x = torch.randn(1, 1, size, size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode():
        with counter:
            model(x)
        model(x)
        _sync(device)
        start = time.perf_counter()
        model(x)
        _sync(device)
        forward = time.perf_counter() - start
        # The layout prediction uses: BatchNorm folded, channels last on a CPU.
        fast = inference_network(model, device)
        fast_x = x.contiguous(memory_format=input_layout(device))
        fast(fast_x)
        _sync(device)
        start = time.perf_counter()
        fast(fast_x)
        _sync(device)
        forward_fast = time.perf_counter() - start
    engine = LazyUNet(class_names=("object",), base_channels=width, depth=depth)
    engine.network.load_state_dict(model.state_dict())
    image = np.random.default_rng(0).random((size, size), dtype=np.float32)
    engine.predict(image[:64, :64], device=device.type)  # warm-up
    start = time.perf_counter()
    engine.predict(image, device=device.type)
    tiled = time.perf_counter() - start
    megapixels = size * size / 1e6
    flops = float(counter.get_total_flops())
    return {
        "forward_s": forward,
        "forward_mp_per_s": megapixels / forward,
        "forward_gflops": flops / forward / 1e9,
        "inference_layout_s": forward_fast,
        "inference_layout_mp_per_s": megapixels / forward_fast,
        "inference_layout_gflops": flops / forward_fast / 1e9,
        "tiled_s": tiled,
        "tiled_mp_per_s": megapixels / tiled,
    }


_BIG = """
import resource, sys, time
import numpy as np
from napari_lazyunet.api import LazyUNet
size, width, depth, threads = (int(v) for v in sys.argv[1:5])
import torch
torch.set_num_threads(threads)
image = np.random.default_rng(0).integers(0, 255, (size, size), dtype=np.uint8)
model = LazyUNet(class_names=("object",), base_channels=width, depth=depth)
start = time.perf_counter()
result = model.predict(image, device="cpu")
seconds = time.perf_counter() - start
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(seconds, peak_mb, result.instances.shape)
"""


def big_image_figures(size: int, width: int, depth: int, threads: int) -> dict[str, float]:
    """Wall time and peak memory of a ``size x size`` prediction, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", _BIG, str(size), str(width), str(depth), str(threads)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {"size": size, "seconds": float(out[0]), "peak_rss_mb": float(out[1])}


def run(device: torch.device, args: argparse.Namespace) -> dict:
    peak = matmul_gflops(device)
    sizes = dict(width=args.width, depth=args.depth, batch=args.batch, patch=args.patch)
    multi = train_step_figures(True, **sizes, steps=args.steps, device=device)
    plain = train_step_figures(False, **sizes, steps=args.steps, device=device)
    infer = inference_figures(args.width, args.depth, args.infer_size, device)
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "matmul_gflops": peak,
        "train_multitask": multi,
        "train_plain": plain,
        "multitask_over_plain_time": multi["s_per_step"] / plain["s_per_step"],
        "multitask_over_plain_flops": multi["gflop_per_step"] / plain["gflop_per_step"],
        "train_share_of_matmul": multi["gflops"] / peak,
        "inference": infer,
        "inference_share_of_matmul": infer["forward_gflops"] / peak,
        "inference_layout_share_of_matmul": infer["inference_layout_gflops"] / peak,
        "tiled_over_untiled_time": infer["tiled_s"] / infer["inference_layout_s"],
    }


def report(f: dict) -> None:
    m, p, i = f["train_multitask"], f["train_plain"], f["inference"]
    print(f"\n{f['device']}, {f['threads']} thread(s)")
    print(f"  matrix multiply (float32): {f['matmul_gflops']:.1f} GFLOP/s")
    for name, t in (("multi-task U-Net", m), ("plain U-Net", p)):
        print(
            f"  training step, {name}: {1000 * t['s_per_step']:.0f} ms, "
            f"{t['gflop_per_step']:.2f} GFLOP, {t['gflops']:.1f} GFLOP/s"
        )
    print(
        f"  multi-task / plain: {f['multitask_over_plain_time']:.2f}x the time, "
        f"{f['multitask_over_plain_flops']:.2f}x the FLOPs; training reaches "
        f"{100 * f['train_share_of_matmul']:.0f} % of the matrix-multiply rate"
    )
    print(
        f"  inference: untiled forward {i['forward_mp_per_s']:.2f} MP/s "
        f"({100 * f['inference_share_of_matmul']:.0f} % of the matrix-multiply rate) in the "
        f"training layout, {i['inference_layout_mp_per_s']:.2f} MP/s "
        f"({100 * f['inference_layout_share_of_matmul']:.0f} %) with BatchNorm folded and "
        f"channels last; tiled prediction with instances {i['tiled_mp_per_s']:.2f} MP/s "
        f"({f['tiled_over_untiled_time']:.2f}x the time of the latter)"
    )
    if "big" in f:
        b = f["big"]
        print(
            f"  {b['size']} x {b['size']} image predicted in {b['seconds']:.0f} s, "
            f"peak memory {b['peak_rss_mb']:.0f} MB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=80)
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--infer-size", type=int, default=512)
    parser.add_argument("--big", type=int, default=0, help="side of the large image (0: skip)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # as training and prediction run
    results = [run(torch.device("cpu"), args)]
    if args.big:
        results[0]["big"] = big_image_figures(args.big, args.width, args.depth, args.threads)
    if torch.cuda.is_available():
        results.append(run(torch.device("cuda"), args))
    for figures in results:
        report(figures)
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(results, stream, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
