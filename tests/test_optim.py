import pytest
import torch
from torch import nn

from aekit._utils import InputError
from aekit.optim import KerasRMSprop, make_optimizer


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
