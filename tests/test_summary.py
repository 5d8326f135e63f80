import pytest

from aekit import dense_table, format_table, module_table
from aekit._utils import InputError
from aekit.modules import build_net


def test_dense_table_reference_numbers():
    rows = dense_table([784, 100, 20, 100, 784])
    assert [r.weights for r in rows] == [78400, 2000, 2000, 78400]
    assert [r.biases for r in rows] == [100, 20, 100, 784]
    assert sum(r.total for r in rows) == 161_804
    assert "161,804" in format_table(rows)


def test_seed_autoencoder_count():
    rows = module_table(build_net(n_features=784))
    assert sum(r.total for r in rows) == 1_146_986
    assert len(rows) == 8


def test_conv_autoencoder_count():
    assert (
        sum(r.total for r in module_table(build_net(n_features=784, architecture="conv", n_components=None))) == 12_193
    )


def test_batchnorm_counted_separately():
    rows = module_table(build_net(n_features=10, hidden_layer_sizes=(4,), batchnorm=True))
    assert any(r.other == 8 for r in rows)  # BatchNorm1d(4): 4 scales + 4 shifts


@pytest.mark.parametrize("sizes", [[784], [784, 0], [], [3.5, 2]])
def test_bad_sizes(sizes):
    with pytest.raises(InputError, match="positive integers"):
        dense_table(sizes)
