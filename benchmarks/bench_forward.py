"""Benchmark: forward-run inferences/s of the flux network against its matmul roofline.

On the same N rows of 10 drivers (default 1e6, about one forward-run block of
32768 cells × 31 days), in the same run, it times

* roofline: plain matmuls of the network's layer shapes (N×10 @ 10×32,
  N×32 @ 32×32, N×32 @ 32×1) into preallocated outputs (``torch.mm(out=...)``);
* naive: ``NEENetwork.forward`` (batched, under ``torch.inference_mode``);
* fast: :class:`fluxbridge.inference.fast.FoldedMember` (row tiles kept in
  cache, so it can beat the roofline, whose (N, 32) intermediates go through
  main memory);

and prints inferences/s (median over repeats, after warm-up, with min and max),
the ratios to the roofline, and the fast path's deviation from the network.
Each repeat times every variant once, in turn, so that load from other
processes falls on all of them alike. Usage:

    .venv/bin/python benchmarks/bench_forward.py [--rows 1000000] [--device cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from fluxbridge.inference.fast import FoldedMember
from fluxbridge.models.network import NEENetwork


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _matmuls(x: torch.Tensor, weights: list[torch.Tensor]) -> Callable[[], None]:
    """The network's three matmul shapes, without bias or ReLU, into preallocated outputs."""
    outs = [torch.empty(x.shape[0], w.shape[1], device=x.device) for w in weights]

    def run() -> None:
        h = x
        for w, out in zip(weights, outs, strict=True):
            h = torch.mm(h, w, out=out)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows (cell-days) per call")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (CPU)")
    parser.add_argument("--tile-rows", type=int, default=None, help="fast path tile (rows)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    net = NEENetwork().to(device).eval()
    net.set_standardisation(torch.randn(10) * 50, torch.rand(10) * 20 + 0.1)
    n = args.rows
    x = net.input_mean + net.input_std * torch.randn(n, 10, device=device)

    fast = FoldedMember(net, tile_rows=args.tile_rows)
    tile = fast.tile_rows_for(device, n)
    weights = [net.layers[i].weight.detach().t().contiguous() for i in (0, 2, 4)]

    def naive() -> None:
        with torch.inference_mode():
            net(x)

    variants: dict[str, Callable[[], object]] = {
        "roofline (matmuls)": _matmuls(x, weights),
        "naive forward": naive,
        "fast (FoldedMember)": lambda: fast(x),
    }
    print(
        f"torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}, "
        f"cores {os.cpu_count()}, rows {n}, fast tile {tile} rows, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    times: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(args.warmup + args.repeats):
        for name, run in variants.items():
            _synchronise(device)
            start = time.perf_counter()
            run()
            _synchronise(device)
            if repeat >= args.warmup:
                times[name].append(time.perf_counter() - start)

    rate = {name: n / statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(
            f"{name:21s} {rate[name] / 1e6:8.2f} M inferences/s "
            f"(min {n / max(t) / 1e6:7.2f}, max {n / min(t) / 1e6:7.2f})"
        )
    roof, fast_rate = rate["roofline (matmuls)"], rate["fast (FoldedMember)"]
    print(f"ratio fast / roofline:        {fast_rate / roof:6.2f}")
    print(f"ratio naive / roofline:       {rate['naive forward'] / roof:6.2f}")
    with torch.inference_mode():
        want = net(x)
        deviation = ((fast(x) - want).abs().max() / want.abs().max()).item()
    print(f"max |fast - forward| / max |forward|: {deviation:.1e}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
