import math

import pytest
import torch
from torch import nn

from aekit._utils import InputError, TrainingDivergedError
from aekit.optim import make_optimizer
from aekit.training import LoopState, TrainConfig, evaluate, optimizer_step, train


def _toy(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4))
    X = torch.rand(64, 4)

    def loss_fn(batch, training):
        loss = nn.functional.mse_loss(net(batch[0]), batch[0])
        return {"loss": loss, "mse": loss}

    return net, X, loss_fn


def test_train_reduces_loss_and_changes_weights():
    net, X, loss_fn = _toy()
    before = [p.detach().clone() for p in net.parameters()]
    state = train(
        net, loss_fn, make_optimizer("adam", net.parameters(), 0.01), (X,), TrainConfig(epochs=20, batch_size=16)
    )
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
        net,
        loss_fn,
        make_optimizer("sgd", net.parameters(), 0.5),
        (X[:48],),
        TrainConfig(epochs=50, batch_size=16, early_stopping=True, patience=2),
        val_data=(X[48:],),
        callbacks=[cb],
    )
    assert "val_loss" in state.history
    assert len(seen) == state.epoch
    assert math.isclose(evaluate(net, loss_fn, (X[48:],), 64)["loss"], min(seen), rel_tol=1e-5)


def test_callback_true_stops():
    net, X, loss_fn = _toy()
    state = train(
        net,
        loss_fn,
        make_optimizer("adam", net.parameters(), 0.01),
        (X,),
        TrainConfig(epochs=10),
        callbacks=[lambda e, logs: e == 2],
    )
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

    state = train(
        net,
        interrupting,
        make_optimizer("adam", net.parameters(), 0.01),
        (X,),
        TrainConfig(epochs=5, batch_size=16),
        callbacks=[cb],
    )
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
    state = train(
        net, loss_fn, make_optimizer("adam", net.parameters(), 0.01), (X,), TrainConfig(epochs=4, lr_schedule="cosine")
    )
    lrs = state.history["lr"]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.01 * 0.3


class _CountingStep:
    """A step the loop is handed: counts its batches and whether it was closed."""

    def __init__(self, step):
        self.plain, self.calls, self.closed = step, [], False

    def __call__(self, batch):
        self.calls.append(batch[0].shape[0])
        return self.plain(batch)

    def close(self):
        self.closed = True


def test_a_given_step_is_used_and_closed():
    """The loop calls the step it is handed (as the estimators hand it a CUDA-graph step) and closes it at the end."""
    runs = []
    for custom in (False, True):
        net, X, loss_fn = _toy()
        opt = make_optimizer("rmsprop", net.parameters(), 0.01)
        step = _CountingStep(optimizer_step(loss_fn, opt)) if custom else None
        runs.append(train(net, loss_fn, opt, (X[:60],), TrainConfig(epochs=2, batch_size=16), step=step))
        if custom:
            assert step.calls == [16, 16, 16, 12] * 2 and step.closed
    assert runs[0].history["loss"] == runs[1].history["loss"]


def test_bad_schedule_and_too_few_samples_are_clear_errors():
    net, X, loss_fn = _toy()
    opt = make_optimizer("adam", net.parameters(), 0.01)
    with pytest.raises(InputError, match="lr_schedule='step' must be one of"):
        train(net, loss_fn, opt, (X,), TrainConfig(lr_schedule="step"))
    with pytest.raises(InputError, match="got 1 training sample.*at least 2"):
        train(net, loss_fn, opt, (X[:1],), TrainConfig(min_batch=2))
    state = train(net, loss_fn, opt, (X[:33],), TrainConfig(epochs=1, batch_size=16, min_batch=2))
    assert state.epoch == 1  # the batch of one sample joined the one before it
