"""MNIST downloads against a local HTTP server: failover, bad bodies, truncation, corrupted cache.

The server on 127.0.0.1 serves the shared MNIST ``.gz`` files from memory under
prefixes that choose a behaviour: ``/good/`` (the file), ``/404/``, ``/html/``
(a 200 with an HTML page), ``/trunc/`` (Content-Length of the whole file, then
half of it and a closed connection), ``/cut/`` (half the file, no length) and
``/tampered/`` (a valid gzip of altered bytes). After every scenario the cache
holds only verified files under their final names: nothing partial, no
temporary files.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

import aekit.data
from aekit._utils import DownloadError
from aekit.mnist import MNIST_FILES, load_mnist

TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


@functools.cache
def _tampered(name: str, body: bytes) -> bytes:
    """A valid gzip of the file with its last byte altered."""
    raw = bytearray(gzip.decompress(body))
    raw[-1] ^= 0xFF
    return gzip.compress(bytes(raw), compresslevel=1)


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    log: list[str] = []

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        self.log.append(self.path)
        mode, _, name = self.path.strip("/").partition("/")
        body = self.files.get(name)
        if body is None or mode == "404":
            self.send_error(404)
            return
        if mode == "html":
            body = b"<!doctype html><html><body>Please sign in to continue</body></html>"
            self._send(body, "text/html")
        elif mode == "trunc":
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "cut":
            self.send_response(200)
            self.end_headers()  # HTTP/1.0 without a length: the end of the connection is the end of the body
            self.wfile.write(body[: len(body) // 2])
        elif mode == "tampered":
            self._send(_tampered(name, body), "application/gzip")
        else:
            self._send(body, "application/gzip")

    def _send(self, body: bytes, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server(mnist_dir):
    _Handler.files = {f"{name}.gz": (mnist_dir / f"{name}.gz").read_bytes() for name in MNIST_FILES}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def requests_log(server):
    _Handler.log = []
    return _Handler.log


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch):
    monkeypatch.delenv("AEKIT_MNIST_DIR", raising=False)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def _seed_train(cache: Path, mnist_dir: Path) -> None:
    """Put the (big) training files in the cache so that a test downloads only the 10k test files."""
    cache.mkdir(parents=True, exist_ok=True)
    for name in TRAIN_FILES:
        (cache / f"{name}.gz").symlink_to(mnist_dir / f"{name}.gz")


def _assert_clean(cache: Path, expected: set[str]) -> None:
    """Only verified files, under their final names: no partial downloads, no temporary files."""
    names = {p.name for p in cache.iterdir()} if cache.exists() else set()
    assert names == expected, names
    for name in expected:
        size, sha = MNIST_FILES[name.removesuffix(".gz")]
        data = gzip.decompress((cache / name).read_bytes())
        assert len(data) == size and hashlib.sha256(data).hexdigest() == sha


def _load(cache: Path, mirrors: list[str], **kw):
    return load_mnist(None, mirrors=mirrors, cache_dir=cache, retries=kw.pop("retries", 1), timeout=5, **kw)


ALL_GZ = {f"{n}.gz" for n in MNIST_FILES}


def test_full_download_with_failover_then_cache(server, requests_log, tmp_path, mnist):
    cache = tmp_path / "cache"
    m = _load(cache, [f"{server}/404/", f"{server}/good/"])
    assert requests_log == [p for n in MNIST_FILES for p in (f"/404/{n}.gz", f"/good/{n}.gz")]
    for got, want in zip(m, mnist, strict=True):
        assert np.array_equal(got, want)
    _assert_clean(cache, ALL_GZ)
    # a second load is served from the cache, without touching the network
    requests_log.clear()
    m2 = _load(cache, [f"{server}/404/"])
    assert requests_log == [] and np.array_equal(m2.y_test, mnist.y_test)


@pytest.mark.parametrize("bad", ["html", "trunc", "cut", "tampered"])
def test_bad_mirror_is_skipped(server, requests_log, tmp_path, mnist_dir, bad):
    cache = tmp_path / "cache"
    _seed_train(cache, mnist_dir)
    m = _load(cache, [f"{server}/{bad}/", f"{server}/good/"])
    assert m.X_test.shape == (10000, 784) and list(np.bincount(m.y_test))[:2] == [980, 1135]
    assert requests_log == [p for n in TEST_FILES for p in (f"/{bad}/{n}.gz", f"/good/{n}.gz")]
    _assert_clean(cache, ALL_GZ)


def test_network_errors_are_retried_on_the_same_mirror(server, requests_log, tmp_path, mnist_dir):
    cache = tmp_path / "cache"
    _seed_train(cache, mnist_dir)
    with pytest.raises(DownloadError):
        _load(cache, [f"{server}/trunc/"], retries=3)
    # an interrupted transfer is worth another try; the first file never arrived, so load_mnist stopped there
    assert requests_log == ["/trunc/t10k-images-idx3-ubyte.gz"] * 3
    _assert_clean(cache, {f"{n}.gz" for n in TRAIN_FILES})


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 3],  # truncated gzip
        lambda b: gzip.compress(b"\x00" * 10008),  # wrong content, valid gzip
        lambda b: b"<html>not found</html>",  # an HTML page saved under the file's name
    ],
)
def test_corrupted_cache_file_is_downloaded_again(server, requests_log, tmp_path, mnist_dir, damage):
    cache = tmp_path / "cache"
    _seed_train(cache, mnist_dir)
    good = (mnist_dir / "t10k-images-idx3-ubyte.gz").read_bytes()
    (cache / "t10k-images-idx3-ubyte.gz").write_bytes(good)
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(damage((mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()))
    m = _load(cache, [f"{server}/good/"])
    assert requests_log == ["/good/t10k-labels-idx1-ubyte.gz"]
    assert list(np.bincount(m.y_test)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    _assert_clean(cache, ALL_GZ)


def test_all_mirrors_fail_one_error_lists_every_url(server, requests_log, tmp_path, mnist_dir):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    cache = tmp_path / "cache"
    _seed_train(cache, mnist_dir)
    mirrors = [f"{server}/404/", f"{server}/html/", f"{server}/trunc/", f"{server}/cut/", f"{dead}/mnist/"]
    with pytest.raises(DownloadError) as info:
        _load(cache, mirrors)
    msg = str(info.value)
    for base in mirrors:
        assert base + "t10k-images-idx3-ubyte.gz" in msg
    assert "404" in msg and "checksum mismatch" in msg
    assert "download the four MNIST files by hand" in msg and str(cache) in msg and "AEKIT_MNIST_DIR" in msg
    assert isinstance(info.value, OSError)  # callers may catch it as an I/O failure
    _assert_clean(cache, {f"{n}.gz" for n in TRAIN_FILES})


def test_interrupt_during_download_leaves_nothing(server, tmp_path, mnist_dir, monkeypatch):
    """Ctrl-C halfway through a transfer: the exception propagates, no partial file anywhere."""
    import pooch

    real = pooch.HTTPDownloader.__call__

    def half_then_interrupt(self, url, output_file, pooch_obj, check_only=False):
        real(self, url, output_file, pooch_obj)
        Path(output_file).write_bytes(Path(output_file).read_bytes()[:1000])
        raise KeyboardInterrupt

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", half_then_interrupt)
    cache = tmp_path / "cache"
    _seed_train(cache, mnist_dir)
    with pytest.raises(KeyboardInterrupt):
        _load(cache, [f"{server}/good/"])
    _assert_clean(cache, {f"{n}.gz" for n in TRAIN_FILES})


def test_download_off_and_file_missing_names_the_fix(tmp_path):
    with pytest.raises(aekit.data.InputError, match="not found.*download=True"):
        load_mnist(None, download=False, cache_dir=tmp_path / "cache")


def test_a_cache_that_is_a_file_is_named_before_any_download(tmp_path, monkeypatch):
    in_the_way = tmp_path / "cache"
    in_the_way.write_text("")  # e.g. AEKIT_CACHE=/dev/null: was "[Errno 17] File exists: '/dev/null'"
    monkeypatch.delenv("AEKIT_MNIST_DIR", raising=False)
    monkeypatch.setenv("AEKIT_CACHE", str(in_the_way))
    with pytest.raises(aekit.data.InputError, match=r"AEKIT_CACHE='.*cache' is not a folder .*unset it"):
        load_mnist(mirrors=["http://127.0.0.1:9/"])
    with pytest.raises(aekit.data.InputError, match=r"the cache folder .* is not a folder .*move that file away"):
        load_mnist(mirrors=["http://127.0.0.1:9/"], cache_dir=in_the_way / "mnist")
