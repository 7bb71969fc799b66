"""Files from the internet: hash-checked downloads, Keras' cache, knowing when there is no network (never using it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.data import download
from core.data.download import cached_or_downloaded, fetch, file_sha256, keras_cache_dir, network_problem
from core.errors import DataError


class Sockets:
    """Stands in for socket.create_connection: hosts in `reachable` answer, the others are unreachable."""

    def __init__(self, reachable: set[str]) -> None:
        self.reachable = reachable
        self.asked: list[tuple[str, int]] = []

    def __call__(self, address: tuple[str, int], timeout: float):
        self.asked.append(address)
        if address[0] not in self.reachable:
            raise OSError(101, "Network is unreachable")
        return SimpleNamespace(close=lambda: None)


@pytest.fixture()
def sockets(monkeypatch) -> Sockets:
    """No real socket: one host answers; every answer is forgotten before and after the test."""
    fake = Sockets({"storage.googleapis.com"})
    monkeypatch.setattr(download.socket, "create_connection", fake)
    monkeypatch.setattr(download, "_network_checked", {})
    return fake


def test_fetch_downloads_checks_hash_and_caches(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"digits" * 100)
    digest = file_sha256(source)
    dest = tmp_path / "cache" / "copy.bin"
    assert fetch(source.as_uri(), dest, digest) == dest
    assert dest.read_bytes() == source.read_bytes()
    source.unlink()  # cached now: no second download
    assert fetch(source.as_uri(), dest, digest) == dest


def test_fetch_refuses_a_bad_hash_and_leaves_nothing(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"tampered")
    dest = tmp_path / "cache" / "copy.bin"
    with pytest.raises(DataError, match="SHA-256 does not match"):
        fetch(source.as_uri(), dest, "0" * 64)
    assert not dest.exists() and not list(dest.parent.iterdir())


def test_fetch_reports_an_unreachable_url(tmp_path):
    with pytest.raises(DataError, match=r"could not download file://"):
        fetch((tmp_path / "absent.bin").as_uri(), tmp_path / "x.bin")


def test_network_problem_remembers_its_answer_per_host(sockets, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(download, "time", SimpleNamespace(monotonic=lambda: now[0]))
    assert network_problem("https://storage.googleapis.com/tensorflow/mnist.npz") == ""
    offline = "no network: mirror.example cannot be reached (Network is unreachable)"
    assert network_problem("http://mirror.example:8080/cifar.tar.gz") == offline
    now[0] += download.NETWORK_TTL_S - 1
    assert network_problem("https://storage.googleapis.com/other.npz") == ""  # the host's answer, remembered
    assert network_problem("http://mirror.example:8080/other") == offline
    assert sockets.asked == [("storage.googleapis.com", 443), ("mirror.example", 8080)]
    now[0] += 2  # five minutes on, each host is asked again
    sockets.reachable = {"mirror.example"}
    assert network_problem("http://mirror.example:8080/cifar.tar.gz") == ""
    assert network_problem("https://storage.googleapis.com/x") == (
        "no network: storage.googleapis.com cannot be reached (Network is unreachable)")
    assert sockets.asked[2:] == [("mirror.example", 8080), ("storage.googleapis.com", 443)]


def test_with_downloads_off_only_a_valid_cached_copy_is_used(tmp_path, sockets, monkeypatch):
    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("nothing may be downloaded"))
    target = tmp_path / "datasets" / "mnist.npz"
    url = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
    with pytest.raises(DataError, match=r"^downloads are switched off and Keras' cache has no valid mnist\.npz$"):
        cached_or_downloaded(url, target, None, allow_download=False)
    target.parent.mkdir()
    target.write_bytes(b"cached digits")
    assert cached_or_downloaded(url, target, file_sha256(target), allow_download=False) == target
    assert cached_or_downloaded(url, target, None, allow_download=False) == target  # no hash to check
    with pytest.raises(DataError, match=r"^downloads are switched off and Keras' cache has no valid mnist\.npz$"):
        cached_or_downloaded(url, target, "0" * 64, allow_download=False)  # a damaged copy is never trusted
    assert sockets.asked == []  # the network was never even asked


def test_with_downloads_on_an_unreachable_host_is_said_at_once(tmp_path, sockets, monkeypatch):
    monkeypatch.setattr(download, "fetch", lambda *a, **k: pytest.fail("no download may be tried offline"))
    with pytest.raises(DataError, match=r"^no network: mirror\.example cannot be reached \(Network is unreachable\)$"):
        cached_or_downloaded("https://mirror.example/cifar.tar.gz", tmp_path / "cifar.tar.gz", None, allow_download=True)
    assert sockets.asked == [("mirror.example", 443)]


def test_keras_cache_follows_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert keras_cache_dir() == tmp_path / "keras" / "datasets"
