"""The fast inference path against NEENetwork.forward and a hand-computed network."""

import copy
import multiprocessing
import pickle

import pytest
import torch

from fluxbridge.inference.fast import CPU_TILE_ROWS, FoldedMember
from fluxbridge.models.network import NEENetwork

RTOL = 1e-5


def _random_net(seed: int) -> NEENetwork:
    """Random weights and standardisation with one std of 1 and one zero mean."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = NEENetwork()
    mean = torch.randn(10, generator=gen) * 50
    std = torch.rand(10, generator=gen) * 20 + 0.1
    mean[3] = 0.0
    std[5] = 1.0
    net.set_standardisation(mean, std)
    return net


def _drivers(net: NEENetwork, n: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return net.input_mean + 2 * net.input_std * torch.randn(n, 10, generator=gen)


def _assert_matches(got: torch.Tensor, want: torch.Tensor) -> None:
    """Equal to RTOL relative to the output's scale (near-zero outputs have no relative digits)."""
    assert got.shape == want.shape and got.dtype == torch.float32
    scale = want.abs().max().clamp_min(1e-30)
    assert ((got - want).abs().max() / scale).item() <= RTOL


def test_hand_computed_network():
    net = NEENetwork(driver_names=("a", "b"), latent=2)
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
        net.layers[0].bias.copy_(torch.tensor([0.0, 1.0]))
        net.layers[2].weight.copy_(torch.tensor([[1.0, 1.0], [2.0, 0.0]]))
        net.layers[2].bias.copy_(torch.tensor([-1.0, 0.0]))
        net.layers[4].weight.copy_(torch.tensor([[3.0, -1.0]]))
        net.layers[4].bias.copy_(torch.tensor([0.5]))
    net.set_standardisation(torch.tensor([10.0, 0.0]), torch.tensor([2.0, 4.0]))
    # z = ((14 - 10)/2, 8/4) = (2, 2); h1 = relu(2, -2 + 1) = (2, 0);
    # h2 = relu(2 + 0 - 1, 4) = (1, 4); y = 3 - 4 + 0.5 = -0.5.
    # z = (0, -4/4) = (0, -1); h1 = relu(0, 1 + 1) = (0, 2); h2 = relu(1, 0) = (1, 0); y = 3.5.
    x = torch.tensor([[14.0, 8.0], [10.0, -4.0]])
    got = FoldedMember(net)(x)
    assert got.tolist() == pytest.approx([-0.5, 3.5], abs=1e-6)


@pytest.mark.parametrize("n", [1, 7, 63, 64, 65, 3 * 64 + 5])
def test_equals_forward_small_tiles(n):
    net = _random_net(n)
    x = _drivers(net, n, seed=100 + n)
    _assert_matches(FoldedMember(net, tile_rows=64)(x), net(x).detach())


def test_equals_forward_default_tile_not_a_multiple():
    net = _random_net(1)
    x = _drivers(net, 2 * CPU_TILE_ROWS + 123, seed=2)
    _assert_matches(FoldedMember(net)(x), net(x).detach())


def test_zero_std_kept_at_one_and_empty_input():
    net = _random_net(3)
    std = net.input_std.clone()
    std[0] = 0.0
    net.set_standardisation(net.input_mean.clone(), std)
    x = _drivers(net, 50, seed=4)
    member = FoldedMember(net)
    _assert_matches(member(x), net(x).detach())
    assert member(x[:0]).shape == (0,)


def test_buffers_do_not_leak_between_sizes():
    net = _random_net(5)
    member = FoldedMember(net, tile_rows=32)
    big, small, mid = (_drivers(net, n, seed=n) for n in (100, 3, 40))
    want = {len(t): net(t).detach() for t in (big, small, mid)}
    out_small_first = member(small)
    out_big = member(big)
    out_small = member(small)
    out_mid = member(mid)
    # Earlier results are not overwritten by later calls (each call owns its output).
    _assert_matches(out_small_first, want[3])
    _assert_matches(out_big, want[100])
    _assert_matches(out_small, want[3])
    _assert_matches(out_mid, want[40])
    # Whole-input tiles (the non-CPU default) grow their buffers and still match.
    whole = FoldedMember(net, tile_rows=10**9)
    for t in (small, big, mid, small):
        _assert_matches(whole(t), want[len(t)])


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("n", [5, 64, 65, 129, 1000])
def test_worker_split_leaves_caller_threads_alone(threads, n):
    net = _random_net(20 + n)
    x = _drivers(net, n, seed=n)
    caller = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        got = FoldedMember(net, tile_rows=64)(x)
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(caller)
    _assert_matches(got, net(x).detach())


def test_under_inference_mode():
    net = _random_net(6)
    member = FoldedMember(net, tile_rows=16)
    with torch.inference_mode():
        x = _drivers(net, 37, seed=7)
        want = net(x)
        got = member(x)
    assert x.is_inference()
    _assert_matches(got, want)


def test_source_network_unchanged_and_not_aliased():
    net = _random_net(8)
    before = copy.deepcopy(net.state_dict())
    x = _drivers(net, 20, seed=9)
    member = FoldedMember(net)
    first = member(x)
    after = net.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert all(p.requires_grad for p in net.parameters())
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    assert torch.equal(member(x), first)


def test_pickle_round_trip():
    net = _random_net(10)
    member = FoldedMember(net, tile_rows=8)
    x = _drivers(net, 30, seed=11)
    member(x)  # buffers exist: they must not be needed to unpickle
    clone = pickle.loads(pickle.dumps(member))
    assert clone.tile_rows == 8
    assert torch.equal(clone(x), member(x))


def _run_in_child(member: FoldedMember, x: torch.Tensor, queue: multiprocessing.Queue) -> None:
    torch.set_num_threads(2)
    queue.put(member(x).numpy())


def test_forked_child_gets_its_own_workers():
    net = _random_net(16)
    member = FoldedMember(net, tile_rows=16)
    x = _drivers(net, 100, seed=17)
    member(x)  # the parent's worker pool exists now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_run_in_child, args=(member, x, queue))
    child.start()
    try:
        # Without a fresh pool in the child this would wait for threads that do not exist.
        got = torch.from_numpy(queue.get(timeout=60))
        child.join(timeout=60)
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    _assert_matches(got, net(x).detach())


@pytest.mark.parametrize(
    ("shape", "dtype"), [((5, 9), torch.float32), ((5,), torch.float32), ((5, 10), torch.float64)]
)
def test_bad_input_is_refused(shape, dtype):
    member = FoldedMember(_random_net(12))
    with pytest.raises(ValueError, match=r"float32 tensor \(N, 10\)"):
        member(torch.zeros(shape, dtype=dtype))


def test_bad_tile_rows():
    with pytest.raises(ValueError, match=r"tile_rows .* got 0"):
        FoldedMember(_random_net(13), tile_rows=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_forward():
    net = _random_net(14)
    x = _drivers(net, 5000, seed=15)
    want = net(x).detach()
    got = FoldedMember(net)(x.cuda())
    assert got.device.type == "cuda"
    _assert_matches(got.cpu(), want)
