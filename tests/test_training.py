import math

import pytest
import torch
from torch import nn

from aekit._utils import InputError, TrainingDivergedError
from aekit.training import KerasRMSprop, LoopState, TrainConfig, evaluate, make_optimizer, train


def _toy(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4))
    X = torch.rand(64, 4)

    def loss_fn(batch, training):
        loss = nn.functional.mse_loss(net(batch[0]), batch[0])
        return {"loss": loss, "mse": loss}

    return net, X, loss_fn


def test_keras_rmsprop_matches_keras_formula():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = KerasRMSprop([p], lr=0.1, rho=0.9, momentum=0.5, eps=1e-7)
    v = torch.zeros(2)
    buf = torch.zeros(2)
    ref = p.detach().clone()
    for g in ([0.5, -1.0], [0.2, 0.3], [-0.7, 0.1]):
        g = torch.tensor(g)
        p.grad = g.clone()
        opt.step()
        v = 0.9 * v + 0.1 * g**2
        buf = 0.5 * buf + 0.1 * g / torch.sqrt(v + 1e-7)
        ref = ref - buf
        assert torch.allclose(p.detach(), ref, atol=1e-7)


def test_keras_rmsprop_differs_from_torch_when_gradients_are_tiny():
    # eps inside the root (Keras) vs outside (PyTorch): a 1e-4 gradient moves very differently
    a = torch.nn.Parameter(torch.zeros(1))
    b = torch.nn.Parameter(torch.zeros(1))
    ka, tb = KerasRMSprop([a], lr=0.01), torch.optim.RMSprop([b], lr=0.01, alpha=0.9, eps=1e-7)
    a.grad = torch.full((1,), 1e-4)
    b.grad = torch.full((1,), 1e-4)
    ka.step()
    tb.step()
    assert abs(float(a.detach()) - float(b.detach())) > 1e-3


def test_train_reduces_loss_and_changes_weights():
    net, X, loss_fn = _toy()
    before = [p.detach().clone() for p in net.parameters()]
    state = train(net, loss_fn, make_optimizer("adam", net.parameters(), 0.01), (X,), TrainConfig(epochs=20, batch_size=16))
    assert state.epoch == 20 and state.stop_reason == "completed"
    assert state.history["loss"][-1] < state.history["loss"][0]
    assert set(state.history) >= {"loss", "mse", "lr", "time"}
    assert any(not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_evaluate_does_not_change_weights():
    net, X, loss_fn = _toy()
    before = [p.detach().clone() for p in net.parameters()]
    out = evaluate(net, loss_fn, (X,), 16)
    assert out["loss"] > 0
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_validation_and_early_stopping_restore_best():
    net, X, loss_fn = _toy()
    seen = []

    def cb(epoch, logs):
        seen.append(logs["val_loss"])

    # lr so large that validation loss gets worse: early stopping must restore the best epoch
    state = train(
        net, loss_fn, make_optimizer("sgd", net.parameters(), 0.5), (X[:48],),
        TrainConfig(epochs=50, batch_size=16, early_stopping=True, patience=2), val_data=(X[48:],), callbacks=[cb],
    )
    assert "val_loss" in state.history
    assert len(seen) == state.epoch
    assert math.isclose(evaluate(net, loss_fn, (X[48:],), 64)["loss"], min(seen), rel_tol=1e-5)


def test_callback_true_stops():
    net, X, loss_fn = _toy()
    state = train(net, loss_fn, make_optimizer("adam", net.parameters(), 0.01), (X,), TrainConfig(epochs=10), callbacks=[lambda e, logs: e == 2])
    assert state.epoch == 3 and state.stop_reason == "callback"


def test_nan_loss_stops_with_step_and_keeps_last_good_weights():
    net, X, _ = _toy()
    calls = {"n": 0}

    def loss_fn(batch, training):
        calls["n"] += 1
        loss = nn.functional.mse_loss(net(batch[0]), batch[0])
        if calls["n"] == 7:  # epoch 2 (4 steps per epoch), step 3
            loss = loss * float("nan")
        return {"loss": loss}

    opt = make_optimizer("adam", net.parameters(), 0.01)
    snapshot = {}

    def cb(epoch, logs):
        snapshot.update({k: v.clone() for k, v in net.state_dict().items()})

    with pytest.raises(TrainingDivergedError, match=r"epoch 2, step 3"):
        train(net, loss_fn, opt, (X,), TrainConfig(epochs=5, batch_size=16), callbacks=[cb])
    for k, v in net.state_dict().items():
        assert torch.equal(v, snapshot[k])
        assert torch.isfinite(v).all()


def test_ctrl_c_keeps_model_of_last_complete_epoch():
    net, X, loss_fn = _toy()
    calls = {"n": 0}
    after_epoch = {}

    def interrupting(batch, training):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return loss_fn(batch, training)

    def cb(epoch, logs):
        after_epoch.update({k: v.clone() for k, v in net.state_dict().items()})

    state = train(net, interrupting, make_optimizer("adam", net.parameters(), 0.01), (X,), TrainConfig(epochs=5, batch_size=16), callbacks=[cb])
    assert state.stop_reason == "interrupted" and state.epoch == 2
    assert all(torch.equal(v, after_epoch[k]) for k, v in net.state_dict().items())


def test_resume_state_continues_epochs():
    net, X, loss_fn = _toy()
    opt = make_optimizer("adam", net.parameters(), 0.01)
    state = train(net, loss_fn, opt, (X,), TrainConfig(epochs=2))
    state = train(net, loss_fn, opt, (X,), TrainConfig(epochs=4), state=state)
    assert state.epoch == 4 and len(state.history["loss"]) == 4
    assert isinstance(state, LoopState)


def test_cosine_schedule_decays_lr():
    net, X, loss_fn = _toy()
    state = train(net, loss_fn, make_optimizer("adam", net.parameters(), 0.01), (X,), TrainConfig(epochs=4, lr_schedule="cosine"))
    lrs = state.history["lr"]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.01 * 0.3


def test_compile_option_validated_and_eager_on_cpu_auto():
    from aekit._utils import InputError
    from aekit.training import maybe_compile

    def fn(batch, training):
        return {"loss": batch[0].sum()}

    assert maybe_compile(fn, "auto", torch.device("cpu")) is fn
    assert maybe_compile(fn, False, torch.device("cpu")) is fn
    with pytest.raises(InputError, match="compile='yes'"):
        maybe_compile(fn, "yes", torch.device("cpu"))


def test_compiled_fast_path_matches_eager():
    import numpy as np

    from aekit import Autoencoder

    X = np.random.default_rng(0).uniform(size=(256, 32)).astype(np.float32)
    kw = dict(hidden_layer_sizes=(16,), n_components=2, epochs=2, batch_size=64, random_state=0, device="cpu")
    eager = Autoencoder(**kw, compile=False).fit(X)
    compiled = Autoencoder(**kw, compile=True).fit(X)
    assert np.allclose(eager.transform(X), compiled.transform(X), atol=1e-4)
    assert np.allclose(eager.history_["loss"], compiled.history_["loss"], rtol=1e-4)


def test_heap_reuse_tunes_glibc_and_leaves_results_unchanged(monkeypatch):
    import numpy as np

    from aekit import Autoencoder
    from aekit._utils import _glibc, heap_reuse

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
    import numpy as np

    import aekit.estimators as est_mod
    from aekit import Autoencoder, SupervisedAutoencoder

    seen: list[torch.dtype] = []
    build = est_mod.build_net

    def spy_build(**kw):
        net = build(**kw)
        first = next(m for m in net.modules() if isinstance(m, nn.Linear))
        first.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype) if torch.is_grad_enabled() else None)
        return net

    monkeypatch.setattr(est_mod, "build_net", spy_build)
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
    import numpy as np

    import aekit.estimators as est_mod
    from aekit import Autoencoder, SupervisedAutoencoder

    monkeypatch.setattr(est_mod, "fused_optimizer_pays", lambda mode, steps: fused)
    calls = []
    working_params = KerasRMSprop.working_params
    monkeypatch.setattr(KerasRMSprop, "working_params", lambda self: calls.append(1) or working_params(self))
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(300, 24)).astype(np.float32)
    y = np.arange(300) % 3
    kw = dict(hidden_layer_sizes=(16, 8), epochs=2, batch_size=64, random_state=0, device="cpu", precision="bfloat16", dropout=0.1)
    for cls, args, extra in ((Autoencoder, (X,), {}), (SupervisedAutoencoder, (X, y), {"head_dropout": 0.5})):
        monkeypatch.setattr(est_mod, "WORKING_COPIES", True)
        calls.clear()
        working = cls(**kw, **extra).fit(*args)
        assert len(calls) == 2 * 5  # every training step went through the working copies
        monkeypatch.setattr(est_mod, "WORKING_COPIES", False)
        plain = cls(**kw, **extra).fit(*args)
        for a, b in zip(working.net_.parameters(), plain.net_.parameters(), strict=True):
            assert a.dtype == torch.float32 and torch.equal(a, b)
        assert working.history_["loss"] == plain.history_["loss"]


def test_working_copies_follow_their_masters():
    lin = nn.Linear(3, 2)
    opt = make_optimizer("rmsprop", lin.parameters(), 0.01, 0.01, working_dtype=torch.bfloat16)
    w, b = opt.working_params()
    assert w.dtype == torch.bfloat16 and torch.equal(w, lin.weight.detach().to(torch.bfloat16)) and w.requires_grad
    torch.nn.functional.linear(torch.ones(4, 3, dtype=torch.bfloat16), w, b).float().sum().backward()
    before = lin.weight.detach().clone()
    opt.step()
    assert not torch.equal(lin.weight, before)  # the float32 master moved, from the copy's gradient
    assert torch.equal(opt.working_params()[0], lin.weight.detach().to(torch.bfloat16))  # and the copy with it
    opt.zero_grad()
    assert opt.working_params()[0].grad is None
    with torch.no_grad():
        lin.weight.fill_(0.5)  # changed outside step (load_state_dict, a restored snapshot)
    assert torch.equal(opt.working_params()[0], torch.full((2, 3), 0.5, dtype=torch.bfloat16))
    lin(torch.ones(4, 3)).sum().backward()  # a loss from the masters: its gradient would be lost
    with pytest.raises(InputError, match="gradient on a float32 master"):
        opt.step()
    with pytest.raises(InputError, match="rmsprop"):
        make_optimizer("adam", lin.parameters(), 0.01, working_dtype=torch.bfloat16)


def test_precision_validated_and_saved(tmp_path):
    import numpy as np

    from aekit import Autoencoder, load
    from aekit._utils import InputError

    X = np.random.default_rng(0).uniform(size=(64, 16)).astype(np.float32)
    with pytest.raises(InputError, match="precision='float16'"):
        Autoencoder(precision="float16").fit(X)
    a = Autoencoder(hidden_layer_sizes=(8,), epochs=1, precision="bfloat16", random_state=0, device="cpu").fit(X)
    b = load(a.save(tmp_path / "m.safetensors"))
    assert b.precision == "bfloat16"
    assert np.array_equal(a.transform(X), b.transform(X))


@pytest.mark.parametrize("momentum", [0.0, 0.5])
@pytest.mark.parametrize("fused", [False, True])
def test_keras_rmsprop_takes_a_tensor_lr(momentum, fused):
    """While a CUDA graph is captured the lr is a 0-d tensor (CudaGraphStep): same update as the float."""
    ps = [torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5])) for _ in range(2)]
    a = KerasRMSprop([ps[0]], lr=0.1, momentum=momentum, fused=fused)
    b = KerasRMSprop([ps[1]], lr=0.1, momentum=momentum, fused=fused)
    b.param_groups[0]["lr"] = torch.tensor(0.1)
    for g in ([0.5, -1.0, 0.1], [0.2, 0.3, -0.4], [-0.7, 0.1, 0.9]):
        for p in ps:
            p.grad = torch.tensor(g)
        a.step()
        b.step()
        torch.testing.assert_close(ps[1].detach(), ps[0].detach(), rtol=1e-6, atol=1e-7)
    assert not torch.equal(ps[0].detach(), torch.tensor([1.0, -2.0, 0.5]))


def test_cuda_graph_option_is_ignored_on_cpu():
    runs = []
    for graph in (False, True):
        net, X, loss_fn = _toy()
        runs.append(train(net, loss_fn, make_optimizer("rmsprop", net.parameters(), 0.01), (X,), TrainConfig(epochs=3, batch_size=16, cuda_graph=graph)))
    assert runs[0].history["loss"] == runs[1].history["loss"]


class _FakeCuda:
    """Just enough of torch.cuda for CudaGraphStep's bookkeeping on a CPU: a "captured" step is recorded and
    "replayed" by running it again with the learning-rate tensors the capture saw (as the real graph reads them)."""

    def __init__(self, monkeypatch, failing_captures=0):
        import contextlib

        from aekit import training

        # the first ``failing_captures`` captures break off midway, leaving the random generator "stuck" (as
        # PyTorch's does) until a capture completes
        self.captures, self.replays, self.failing, self.stuck = 0, 0, failing_captures, False
        fake = self
        monkeypatch.setattr(training, "_rng_works", lambda device: not fake.stuck)
        monkeypatch.setattr(training, "_BROKEN_CAPTURES", [])

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
                raise RuntimeError("operation not permitted when stream is capturing")
            fake.stuck = False

        class Stream:
            def wait_stream(self, other):
                pass

        init = training.CudaGraphStep.__init__

        def record(st, *a, **k):
            init(st, *a, **k)
            fake.owner = st

        monkeypatch.setattr(training.CudaGraphStep, "__init__", record)
        for name, value in {
            "CUDAGraph": Graph, "graph": graph, "Stream": Stream, "device": lambda d: contextlib.nullcontext(),
            "stream": lambda s: contextlib.nullcontext(), "current_stream": lambda: Stream(), "set_stream": lambda s: None,
        }.items():
            monkeypatch.setattr(torch.cuda, name, value)


def _graph_steps(monkeypatch, momentum=0.01, lrs=None, bump_at=None, failing_captures=0):
    """Steps of a toy model through CudaGraphStep (faked CUDA) and through the plain step: final weights of both."""
    from aekit.training import CudaGraphStep

    runs, fake = [], None
    for graphed in (False, True):
        net, X, loss_fn = _toy()
        opt = KerasRMSprop(net.parameters(), lr=0.01, momentum=momentum)

        def step(batch, net=net, opt=opt, loss_fn=loss_fn):
            losses = loss_fn(batch, True)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            return losses

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


def test_cuda_graph_step_gives_way_with_a_faked_gpu(monkeypatch, caplog):
    """A changed momentum ends the graph; a capture that fails inside goes on eagerly; both train as the plain step."""
    (plain, graphed), fake = _graph_steps(monkeypatch, bump_at=6)
    assert "hyperparameters other than lr (or its param groups) changed" in caplog.text and fake.replays == 3  # steps 3 to 5
    for a, b in zip(graphed[1], plain[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    (plain, graphed), fake = _graph_steps(monkeypatch, failing_captures=1)
    assert "CUDA graph capture of the training step failed" in caplog.text and fake.replays == 0
    assert fake.captures == 2 and not fake.stuck  # the generator was reset by a second, complete capture
    assert graphed[0] == pytest.approx(plain[0], rel=1e-6)
    from aekit import training

    assert len(training._BROKEN_CAPTURES) == 1 and not training.CudaGraphStep.supports(graphed[2])  # no more graphs here


def test_cuda_graph_step_stops_clearly_when_the_generator_cannot_be_reset(monkeypatch):
    from aekit._utils import CudaGraphError

    with pytest.raises(CudaGraphError, match="compile=False"):
        _graph_steps(monkeypatch, failing_captures=2)
