"""The fast paths: the plan (a table of inputs -> plans), compilation, precision, CUDA graphs, malloc tuning."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from aekit import accel
from aekit._utils import CudaGraphError, InputError
from aekit.accel import CudaGraphStep, Plan, build_step, plan, settle
from aekit.optim import KerasRMSprop, make_optimizer
from aekit.training import optimizer_step

from .test_training import _toy

# ----------------------------------------------------------------------------- the plan

#: the estimator defaults, on CPU, for a short run
BASE = {
    "device_type": "cpu",
    "optimizer": "rmsprop",
    "compile": "auto",
    "precision": "float32",
    "architecture": "dense",
    "batchnorm": False,
    "variational": False,
    "steps": 100,
}


def _plan(cuda_graph, fused, working, forward, graphless=None):
    return Plan(
        cuda_graph=cuda_graph,
        fused_optimizer=fused,
        working_copies=working,
        forward_compile=forward,
        graphless_forward_compile=forward if graphless is None else graphless,
    )


CUDA = {"device_type": "cuda"}
BF16 = {"precision": "bfloat16"}
CONV = {"architecture": "conv"}


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        # CPU: no graph; "auto" compiles the RMSprop update from 2,000 steps on, and never the forward pass here
        ({}, _plan(False, False, False, "auto")),
        ({"steps": 1999}, _plan(False, False, False, "auto")),
        ({"steps": 2000}, _plan(False, True, False, "auto")),
        ({"compile": True}, _plan(False, True, False, True)),
        ({"compile": False, "steps": 10**6}, _plan(False, False, False, False)),
        ({**CONV}, _plan(False, False, False, False)),  # "auto" leaves the conv forward eager
        ({**CONV, "compile": True}, _plan(False, True, False, True)),
        ({"optimizer": "adam"}, _plan(False, False, False, "auto")),
        # bfloat16: working copies for RMSprop, dense, no BatchNorm, no Gaussian code, on CPU only
        ({**BF16}, _plan(False, False, True, "auto")),
        ({**BF16, "compile": True}, _plan(False, True, True, True)),
        ({**BF16, "batchnorm": True}, _plan(False, False, False, "auto")),
        ({**BF16, "variational": True}, _plan(False, False, False, "auto")),
        ({**BF16, **CONV}, _plan(False, False, False, False)),
        ({**BF16, "optimizer": "adam"}, _plan(False, False, False, "auto")),
        ({**BF16, "device_type": "mps"}, _plan(False, False, False, "auto")),
        ({**BF16, **CUDA}, _plan(True, False, False, False, "auto")),
        # CUDA: a graph unless compile=False or SGD; "auto" then compiles nothing; Adam's fused kernel
        ({**CUDA}, _plan(True, False, False, False, "auto")),
        ({**CUDA, "steps": 10**6}, _plan(True, False, False, False, "auto")),
        ({**CUDA, "optimizer": "adam"}, _plan(True, True, False, False, "auto")),
        ({**CUDA, "optimizer": "adamw", **CONV}, _plan(True, True, False, False, False)),
        ({**CUDA, "compile": True}, _plan(True, True, False, True)),
        ({**CUDA, "compile": True, **CONV}, _plan(True, True, False, True)),
        ({**CUDA, "compile": False, "optimizer": "adam"}, _plan(False, False, False, False)),
        ({**CUDA, "optimizer": "sgd"}, _plan(False, False, False, "auto")),
        ({**CUDA, "optimizer": "sgd", "steps": 2000}, _plan(False, True, False, "auto")),
        ({**CUDA, "optimizer": "sgd", **CONV}, _plan(False, False, False, False)),
        ({"device_type": "mps", "optimizer": "adam"}, _plan(False, False, False, "auto")),
        # overrides for tests and benchmarks
        ({**CUDA, "optimizer": "adam", "cuda_graphs": False}, _plan(False, False, False, "auto")),
        ({**CUDA, "compile": True, "cuda_graphs": False}, _plan(False, True, False, True)),
        ({**BF16, "working_copies": False}, _plan(False, False, False, "auto")),
        ({"fused": True}, _plan(False, True, False, "auto")),
        ({**CUDA, "optimizer": "adam", "fused": False}, _plan(True, False, False, False, "auto")),
        # the thread count chosen by aekit.threads rides along unchanged
        ({"threads": 3}, replace(_plan(False, False, False, "auto"), threads=3)),
    ],
)
def test_plan_table(inputs, expected):
    got = plan(**{**BASE, **inputs})
    assert got == expected
    assert got.working_dtype == (torch.bfloat16 if expected.working_copies else None)


def test_plan_is_frozen_and_checks_compile():
    p = plan(**BASE)
    with pytest.raises(AttributeError):
        p.cuda_graph = True
    with pytest.raises(InputError, match="compile='yes' must be True, False or 'auto'"):
        plan(**{**BASE, "compile": "yes"})


@pytest.mark.parametrize(
    ("optimizer", "kwargs", "keeps_graph"),
    [
        ("rmsprop", {}, True),
        ("rmsprop", {"fused": True}, True),
        ("rmsprop", {"working_dtype": torch.bfloat16}, False),
        ("adam", {}, False),
        ("sgd", {}, False),
    ],
)
def test_settle_drops_the_graph_where_the_optimizer_cannot_be_captured(optimizer, kwargs, keeps_graph):
    """KerasRMSprop can be captured (not with working copies); Adam without its fused kernel (as built on a CPU)
    and SGD cannot: no graph, and "auto" then compiles the forward pass as it does without graphs."""
    graphed = _plan(True, False, False, False, "auto")
    opt = make_optimizer(optimizer, nn.Linear(2, 2).parameters(), 0.01, **kwargs)
    assert settle(graphed, opt) == (graphed if keeps_graph else _plan(False, False, False, "auto"))
    assert settle(graphed.without_graph(), opt) == graphed.without_graph()


def test_build_step_wraps_the_step_only_for_a_cuda_graph():
    net, X, loss_fn = _toy()
    opt = make_optimizer("rmsprop", net.parameters(), 0.01)
    step = optimizer_step(loss_fn, opt)
    assert build_step(plan(**BASE), step, opt, 16) is step  # on CPU never a graph: the plain step
    graphed = build_step(plan(**{**BASE, **CUDA}), step, opt, 16)
    assert isinstance(graphed, CudaGraphStep) and graphed.step is step and graphed.full_batch == 16


# ----------------------------------------------------------------------------- compilation and precision


def test_compile_option_validated_and_eager_on_cpu_auto():
    from aekit.accel import maybe_compile

    def fn(batch, training):
        return {"loss": batch[0].sum()}

    assert maybe_compile(fn, "auto", torch.device("cpu")) is fn
    assert maybe_compile(fn, False, torch.device("cpu")) is fn
    with pytest.raises(InputError, match="compile='yes'"):
        maybe_compile(fn, "yes", torch.device("cpu"))


def test_compiled_fast_path_matches_eager():
    from aekit import Autoencoder

    X = np.random.default_rng(0).uniform(size=(256, 32)).astype(np.float32)
    kw = dict(hidden_layer_sizes=(16,), n_components=2, epochs=2, batch_size=64, random_state=0, device="cpu")
    eager = Autoencoder(**kw, compile=False).fit(X)
    compiled = Autoencoder(**kw, compile=True).fit(X)
    assert np.allclose(eager.transform(X), compiled.transform(X), atol=1e-4)
    assert np.allclose(eager.history_["loss"], compiled.history_["loss"], rtol=1e-4)


def test_heap_reuse_tunes_glibc_and_leaves_results_unchanged(monkeypatch):
    from aekit import Autoencoder
    from aekit.accel import _glibc, heap_reuse

    X = np.random.default_rng(0).uniform(size=(256, 64)).astype(np.float32)
    kw = dict(hidden_layer_sizes=(32,), n_components=2, epochs=2, batch_size=64, random_state=0, device="cpu")
    tuned = Autoencoder(**kw).fit(X)
    monkeypatch.setenv("AEKIT_MALLOC_TUNING", "0")
    assert _glibc() is None  # the opt-out is honoured
    with heap_reuse():  # and the context manager is then a no-op
        pass
    plain = Autoencoder(**kw).fit(X)
    assert np.array_equal(tuned.transform(X), plain.transform(X))  # malloc settings never change results


def test_bfloat16_precision_runs_products_in_bf16_and_tracks_float32(monkeypatch):
    import aekit.base as base_mod
    from aekit import Autoencoder, SupervisedAutoencoder

    seen: list[torch.dtype] = []
    build = base_mod.build_net

    def spy_build(**kw):
        net = build(**kw)
        first = next(m for m in net.modules() if isinstance(m, nn.Linear))
        first.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype) if torch.is_grad_enabled() else None)
        return net

    monkeypatch.setattr(base_mod, "build_net", spy_build)
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(512, 64)).astype(np.float32)
    kw = dict(hidden_layer_sizes=(32,), n_components=2, epochs=3, batch_size=64, device="cpu", compile=False)
    ref = Autoencoder(**kw, random_state=0).fit(X)
    assert set(seen) == {torch.float32}
    seen.clear()
    mixed = Autoencoder(**kw, random_state=0, precision="bfloat16").fit(X)
    assert set(seen) == {torch.bfloat16}  # the training forward really ran in bfloat16
    assert all(p.dtype == torch.float32 for p in mixed.net_.parameters())  # float32 master weights
    assert np.allclose(ref.history_["loss"], mixed.history_["loss"], rtol=1e-2)
    assert mixed.transform(X).dtype == np.float32
    again = Autoencoder(**kw, random_state=0, precision="bfloat16").fit(X)
    assert np.array_equal(mixed.transform(X), again.transform(X))  # reproducible
    y = rng.integers(0, 3, len(X))
    sae = SupervisedAutoencoder(**kw, random_state=0, precision="bfloat16").fit(X, y)
    assert np.isfinite(sae.history_["loss"]).all()


@pytest.mark.parametrize("fused", [False, True])
def test_bfloat16_working_copies_equal_autocast_bit_for_bit(monkeypatch, fused):
    """Dense bfloat16 + RMSprop trains through the optimizer's working copies: same numbers as autocast."""
    from aekit import Autoencoder, SupervisedAutoencoder

    calls = []
    working_params = KerasRMSprop.working_params
    monkeypatch.setattr(KerasRMSprop, "working_params", lambda self: calls.append(1) or working_params(self))
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(300, 24)).astype(np.float32)
    y = np.arange(300) % 3
    kw = dict(
        hidden_layer_sizes=(16, 8),
        epochs=2,
        batch_size=64,
        random_state=0,
        device="cpu",
        precision="bfloat16",
        dropout=0.1,
    )
    for cls, args, extra in ((Autoencoder, (X,), {}), (SupervisedAutoencoder, (X, y), {"head_dropout": 0.5})):
        calls.clear()
        working = cls(**kw, **extra)
        working._plan_overrides = {"fused": fused}
        working.fit(*args)
        assert len(calls) == 2 * 5  # every training step went through the working copies
        plain = cls(**kw, **extra)
        plain._plan_overrides = {"fused": fused, "working_copies": False}  # autocast
        plain.fit(*args)
        assert not calls[10:]
        for a, b in zip(working.net_.parameters(), plain.net_.parameters(), strict=True):
            assert a.dtype == torch.float32 and torch.equal(a, b)
        assert working.history_["loss"] == plain.history_["loss"]


def test_precision_validated_and_saved(tmp_path):
    from aekit import Autoencoder, load

    X = np.random.default_rng(0).uniform(size=(64, 16)).astype(np.float32)
    with pytest.raises(InputError, match="precision='float16'"):
        Autoencoder(precision="float16").fit(X)
    a = Autoencoder(hidden_layer_sizes=(8,), epochs=1, precision="bfloat16", random_state=0, device="cpu").fit(X)
    b = load(a.save(tmp_path / "m.safetensors"))
    assert b.precision == "bfloat16"
    assert np.array_equal(a.transform(X), b.transform(X))


def test_inference_runs_in_the_models_precision(tmp_path):
    """precision="bfloat16" reaches transform/inverse_transform/predict (float32 results), also when set after
    fitting a float32 model; float32 inference is unchanged by it."""
    from aekit import ParametricTSNE, SupervisedAutoencoder

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(300, 24)).astype(np.float32)
    y = np.arange(300) % 3
    kw = dict(hidden_layer_sizes=(32,), epochs=2, batch_size=64, random_state=0, device="cpu")
    sae = SupervisedAutoencoder(**kw).fit(X, y)
    Z32, R32, P32 = sae.transform(X), sae.inverse_transform(sae.transform(X)), sae.predict_proba(X)
    sae.set_params(precision="bfloat16")
    Z16, R16, P16 = sae.transform(X), sae.inverse_transform(Z32), sae.predict_proba(X)
    for a, b in ((Z32, Z16), (R32, R16), (P32, P16)):
        assert b.dtype == np.float32 and a.shape == b.shape
        assert not np.array_equal(a, b)  # the products really ran in bfloat16 ...
        assert np.allclose(a, b, atol=0.05 * np.abs(a).max())  # ... and track float32
    sae.set_params(precision="float32")
    assert np.array_equal(sae.transform(X), Z32)
    with pytest.raises(InputError, match=r"precision='float16' must be one of \['float32', 'bfloat16'\]"):
        sae.set_params(precision="float16").transform(X)
    sae.set_params(precision="float32")
    tsne = ParametricTSNE(**{**kw, "epochs": 1}, perplexity=10, precision="bfloat16").fit(X)
    np.save(tmp_path / "x.npy", X)
    from_disk = tsne.transform(np.load(tmp_path / "x.npy", mmap_mode="r"))  # read from disk chunk by chunk
    assert from_disk.dtype == np.float32 and np.array_equal(from_disk, tsne.transform(X))
    assert not np.array_equal(from_disk, tsne.set_params(precision="float32").transform(X))


# ----------------------------------------------------------------------------- CUDA graphs (faked on a CPU)


class _FakeCuda:
    """Just enough of torch.cuda for CudaGraphStep's bookkeeping on a CPU: a "captured" step is recorded and
    "replayed" by running it again with the learning-rate tensors the capture saw (as the real graph reads them)."""

    def __init__(self, monkeypatch, failing_captures=0, error=RuntimeError):
        import contextlib

        # the first ``failing_captures`` captures break off midway, leaving the random generator "stuck" (as
        # PyTorch's does) until a capture completes
        self.captures, self.replays, self.failing, self.stuck = 0, 0, failing_captures, False
        fake = self
        monkeypatch.setattr(accel, "_rng_works", lambda device: not fake.stuck)
        monkeypatch.setattr(accel, "_BROKEN_CAPTURES", [])

        class Graph:
            def replay(self):
                fake.replays += 1
                st = fake.owner
                saved = [(e[0], e[0]["lr"]) for e in st.lrs]
                for group, lr, _ in st.lrs:
                    group["lr"] = lr
                try:
                    out = st.step(st.static_in)
                finally:
                    for group, lr in saved:
                        group["lr"] = lr
                for k, v in out.items():
                    st.static_out[k].copy_(v.detach())

        @contextlib.contextmanager
        def graph(g, stream=None):  # a capture records work without doing it: undo what the body did
            fake.captures += 1
            opt = fake.owner.optimizer
            tensors = [p for grp in opt.param_groups for p in grp["params"]]
            tensors += [t for st in opt.state.values() for t in st.values() if isinstance(t, torch.Tensor)]
            saved = [t.detach().clone() for t in tensors]
            yield
            with torch.no_grad():
                for t, v in zip(tensors, saved, strict=True):
                    t.copy_(v)
            if fake.captures <= fake.failing:
                fake.stuck = True
                raise error("operation not permitted when stream is capturing")
            fake.stuck = False

        class Stream:
            def wait_stream(self, other):
                pass

        init = accel.CudaGraphStep.__init__

        def record(st, *a, **k):
            init(st, *a, **k)
            fake.owner = st

        monkeypatch.setattr(accel.CudaGraphStep, "__init__", record)
        for name, value in {
            "CUDAGraph": Graph,
            "graph": graph,
            "Stream": Stream,
            "device": lambda d: contextlib.nullcontext(),
            "stream": lambda s: contextlib.nullcontext(),
            "current_stream": lambda: Stream(),
            "set_stream": lambda s: None,
        }.items():
            monkeypatch.setattr(torch.cuda, name, value)


def _graph_steps(monkeypatch, momentum=0.01, lrs=None, bump_at=None, failing_captures=0):
    """Steps of a toy model through CudaGraphStep (faked CUDA) and through the plain step: final weights of both."""
    runs, fake = [], None
    for graphed in (False, True):
        net, X, loss_fn = _toy()
        opt = KerasRMSprop(net.parameters(), lr=0.01, momentum=momentum)

        step = optimizer_step(loss_fn, opt)
        if graphed:
            fake = _FakeCuda(monkeypatch, failing_captures)
            step = CudaGraphStep(step, opt, full_batch=16)
        losses = []
        for i, start in enumerate([0, 16, 32, 48, 0, 16, 32, 48, 60, 0, 16]):  # batch 60:64 is short
            if lrs:
                opt.param_groups[0]["lr"] = lrs[i]
            if bump_at == i:
                opt.param_groups[0]["momentum"] = 0.5
            losses.append(float(step((X[start : start + 16],))["loss"].detach()))
        if graphed:
            step.close()
        runs.append((losses, [p.detach().clone() for p in net.parameters()], opt))
    return runs, fake


def test_cuda_graph_step_bookkeeping_with_a_faked_gpu(monkeypatch):
    """3 warm-up steps, one capture, replays of the full batches with the current lr; the short batch eagerly."""
    lrs = [0.01, 0.01, 0.009, 0.008, 0.007, 0.006, 0.005, 0.004, 0.003, 0.002, 0.001]
    (plain, graphed), fake = _graph_steps(monkeypatch, lrs=lrs)
    assert fake.captures == 1 and fake.replays == 11 - 3 - 1  # 11 steps: 3 warm-up, 1 short, the rest replayed
    assert graphed[0] == pytest.approx(plain[0], rel=1e-6)
    for a, b in zip(graphed[1], plain[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    opt = graphed[2]
    assert isinstance(opt.param_groups[0]["lr"], float)
    assert all(p.grad is None for p in opt.param_groups[0]["params"])  # released by close()


def test_ctrl_c_during_a_capture_stops_and_leaves_the_generator_working(monkeypatch, caplog):
    """Ctrl-C while the step is captured: no eager fallback and no warning, but the tidying of a failed capture
    (the CUDA generator reset), so that a later fit in the same process can draw random numbers."""
    net, X, loss_fn = _toy()
    opt = KerasRMSprop(net.parameters(), lr=0.01)
    fake = _FakeCuda(monkeypatch, failing_captures=1, error=KeyboardInterrupt)
    step = CudaGraphStep(optimizer_step(loss_fn, opt), opt, full_batch=16)
    with pytest.raises(KeyboardInterrupt):
        for _ in range(5):  # 3 warm-up steps, then the capture
            step((X[:16],))
    assert fake.captures == 2 and not fake.stuck and step.failed  # reset by a second, complete capture
    assert "capture of the training step failed" not in caplog.text


def test_cuda_graph_step_gives_way_with_a_faked_gpu(monkeypatch, caplog):
    """A changed momentum ends the graph; a capture that fails inside goes on eagerly; both train as the plain step."""
    (plain, graphed), fake = _graph_steps(monkeypatch, bump_at=6)
    assert (
        "hyperparameters other than lr (or its param groups) changed" in caplog.text and fake.replays == 3
    )  # steps 3 to 5
    for a, b in zip(graphed[1], plain[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    (plain, graphed), fake = _graph_steps(monkeypatch, failing_captures=1)
    assert "CUDA graph capture of the training step failed" in caplog.text and fake.replays == 0
    assert fake.captures == 2 and not fake.stuck  # the generator was reset by a second, complete capture
    assert graphed[0] == pytest.approx(plain[0], rel=1e-6)
    assert len(accel._BROKEN_CAPTURES) == 1 and not CudaGraphStep.supports(graphed[2])  # no more graphs here


def test_cuda_graph_step_stops_clearly_when_the_generator_cannot_be_reset(monkeypatch):
    with pytest.raises(CudaGraphError, match="compile=False"):
        _graph_steps(monkeypatch, failing_captures=2)
