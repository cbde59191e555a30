"""The file cache: one copy per file, confined tokens, an LRU bound, and the /cache routes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from webob import Request, Response

import lwr.cache
from lwr.app import LwrApp
from lwr.cache import FileCache
from lwr.config import load_app_config
from lwr.errors import InvalidRequestError, NotFoundError
from lwr.web.dispatch import LwrWsgiApp


def insert(cache: FileCache, client: str, path: str, data: bytes) -> str:
    uploaded = cache.incoming_path()
    uploaded.write_bytes(data)
    return cache.commit(client, path, uploaded)


def test_the_first_asker_inserts_and_everyone_then_gets_the_token(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache")
    assert cache.available("10.0.0.1", "/g/d1.dat") == {
        "token": FileCache.token("10.0.0.1", "/g/d1.dat"),
        "ready": False,
    }
    assert cache.required("10.0.0.1", "/g/d1.dat") is True
    assert cache.required("10.0.0.1", "/g/d1.dat") is False  # claimed: others wait
    assert cache.required("10.0.0.2", "/g/d1.dat") is True  # another client, another entry
    token = insert(cache, "10.0.0.1", "/g/d1.dat", b"data")
    assert cache.available("10.0.0.1", "/g/d1.dat") == {"token": token, "ready": True}
    assert cache.required("10.0.0.1", "/g/d1.dat") is False


def test_an_abandoned_or_expired_claim_lets_another_client_insert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = FileCache(tmp_path / "cache")
    assert cache.required("c", "/p")
    cache.abandon("c", "/p", cache.incoming_path())
    assert cache.required("c", "/p")
    monkeypatch.setattr(lwr.cache, "CLAIM_SECONDS", 0.0)
    assert cache.required("c", "/p")
    assert os.listdir(cache.incoming) == []


def test_concurrent_inserts_store_the_file_once(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache")
    barrier = threading.Barrier(8)
    tokens: list[str] = []

    def worker() -> None:
        uploaded = cache.incoming_path()
        uploaded.write_bytes(b"same file" * 1000)
        barrier.wait()
        tokens.append(cache.commit("c", "/g/big.dat", uploaded))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1
    assert os.listdir(cache.files) == [tokens[0]]
    assert os.listdir(cache.incoming) == []


def place(cache: FileCache, token: str, target: Path) -> int:
    """What an upload with ``cache_token`` does: fill a new file of the job's."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as out:
        return cache.fill(token, out.fileno())


def test_jobs_get_bytes_of_their_own_never_the_cache_inode(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache")
    token = insert(cache, "c", "/g/d.dat", b"payload")
    target = tmp_path / "job" / "inputs" / "d.dat"
    assert place(cache, token, target) == len(b"payload")
    assert target.read_bytes() == b"payload"
    assert target.stat().st_ino != (cache.files / token).stat().st_ino
    target.write_bytes(b"changed by the job")  # as root or not: content, not permission bits
    assert (cache.files / token).read_bytes() == b"payload"
    assert place(cache, token, target) == 7  # again, e.g. a retried upload: still fine
    assert target.read_bytes() == b"payload"


def test_a_copy_where_reflinks_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lwr.cache, "clone", lambda src, out: False)
    monkeypatch.setattr(lwr.cache.os, "copy_file_range", None, raising=False)
    cache = FileCache(tmp_path / "cache")
    data = os.urandom(5 * 1024 * 1024 + 3)
    token = insert(cache, "c", "/g/big", data)
    assert place(cache, token, tmp_path / "out") == len(data)
    assert (tmp_path / "out").read_bytes() == data


@pytest.mark.parametrize(
    "token",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "A" * 64,
        "a" * 63,
        "g" * 64,
        "",
        "a" * 64 + "/x",
        "a" * 64 + "\n",
    ],
)
def test_a_token_never_names_anything_but_a_cache_entry(tmp_path: Path, token: str) -> None:
    cache = FileCache(tmp_path / "cache")
    with pytest.raises(InvalidRequestError, match="invalid cache token"):
        place(cache, token, tmp_path / "target")
    assert (tmp_path / "target").read_bytes() == b""  # nothing was read through the token


def test_an_unknown_token_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        place(FileCache(tmp_path / "cache"), "a" * 64, tmp_path / "target")


def test_least_recently_used_files_are_evicted(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache", max_bytes=2500)
    first = insert(cache, "c", "/1", b"x" * 1000)
    second = insert(cache, "c", "/2", b"x" * 1000)
    old = time.time() - 100
    os.utime(cache.files / first, (old, old))
    os.utime(cache.files / second, (old - 10, old - 10))
    place(cache, second, tmp_path / "job" / "two")  # using it makes it the most recent
    third = insert(cache, "c", "/3", b"x" * 1000)
    assert sorted(os.listdir(cache.files)) == sorted([second, third])
    assert cache.size() == 2000
    assert (tmp_path / "job" / "two").read_bytes() == b"x" * 1000
    huge = insert(cache, "c", "/4", b"y" * 5000)  # bigger than the bound: kept alone
    assert os.listdir(cache.files) == [huge]


# -- over HTTP, in-process ---------------------------------------------------------------------


@pytest.fixture
def wsgi(tmp_path: Path) -> Iterator[LwrWsgiApp]:
    config = load_app_config(
        {"file_cache_dir": "cache", "file_cache_size": "1000000"}, here=tmp_path
    )
    app = LwrApp(config)
    app.start()
    yield LwrWsgiApp(app)
    app.stop()


def call(
    wsgi: LwrWsgiApp, method: str, route: str, body: bytes | None = None, **params: str
) -> Response:
    request = Request.blank(f"{route}?{urlencode(params)}", method=method)
    if body is not None:
        request.body = body
    response: Response = request.get_response(wsgi)
    return response


def test_the_caching_protocol_over_http(wsgi: LwrWsgiApp) -> None:
    path = "/galaxy/files/dataset_1.dat"
    assert call(wsgi, "PUT", "/cache", path=path).json is True  # a bare boolean
    assert call(wsgi, "PUT", "/cache", path=path).json is False
    assert call(wsgi, "GET", "/cache/status", path=path).json["ready"] is False
    inserted = call(wsgi, "POST", "/cache", b"cached bytes", path=path)
    assert inserted.status_int == 200, inserted.text
    status = call(wsgi, "GET", "/cache/status", path=path).json
    assert status["ready"] is True
    assert call(wsgi, "POST", "/jobs", job_id="7").status_int == 200
    upload = call(
        wsgi,
        "POST",
        "/jobs/7/files",
        job_id="7",
        name="d.dat",
        type="input",
        cache_token=status["token"],
    )
    assert upload.status_int == 200, upload.text
    assert Path(upload.json["path"]).read_bytes() == b"cached bytes"


def test_a_hostile_token_is_refused_over_http(wsgi: LwrWsgiApp) -> None:
    call(wsgi, "POST", "/jobs", job_id="8")
    response = call(
        wsgi, "POST", "/jobs/8/files", name="p", type="input", cache_token="../../../etc/passwd"
    )
    assert response.status_int == 400
    assert "invalid cache token" in response.json["error"]
