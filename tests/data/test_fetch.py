"""``run_fetch`` against a real HTTP server on 127.0.0.1, and safe unpacking."""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from _http import Resource, serve

from fluxbridge.data.archive import MARKER, UnsafeArchiveError, safe_unpack
from fluxbridge.data.fetch import run_fetch
from fluxbridge.errors import ConfigError

BODY = random.Random(7).randbytes(50_000)
FAST = {"attempts": 3, "backoff_s": 0.01, "max_backoff_s": 0.02, "timeout_s": 5.0}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(name: str, url: str, sha256: str | None, target: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "test input",
        "url": url,
        "access": "open",
        "licence": "CC0",
        "citation": "10.1234/test",
        "sha256": sha256,
        "target": target,
        **extra,
    }


def manifest(tmp_path: Path, *entries: dict[str, Any]) -> Path:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump({"download": FAST, "entries": list(entries)}))
    return path


def fetch(tmp_path: Path, *entries: dict[str, Any], check: bool = False, only=None) -> int:
    return run_fetch(
        manifest=manifest(tmp_path, *entries), data_dir=tmp_path / "data", only=only, check=check
    )


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- download


def test_download_verifies_and_renames(tmp_path: Path) -> None:
    with serve({"/f.nc": Resource(BODY)}) as srv:
        code = fetch(tmp_path, entry("f", f"{srv.base_url}/f.nc", sha(BODY), "in/f.nc"))
    assert code == 0
    assert (tmp_path / "data/in/f.nc").read_bytes() == BODY
    assert leftovers(tmp_path / "data") == ["in/f.nc"]


def test_checksum_mismatch_leaves_nothing_and_names_digests(tmp_path: Path, capsys) -> None:
    wrong = sha(b"something else")
    with serve({"/f.nc": Resource(BODY)}) as srv:
        code = fetch(tmp_path, entry("bad-sum", f"{srv.base_url}/f.nc", wrong, "f.nc"))
    out = capsys.readouterr().out
    assert code == 1
    assert leftovers(tmp_path / "data") == []
    assert "'bad-sum'" in out and f"expected {wrong}" in out and f"got {sha(BODY)}" in out


def test_server_errors_are_retried(tmp_path: Path) -> None:
    with serve({"/f.nc": Resource(BODY, fail_first=2)}) as srv:
        code = fetch(tmp_path, entry("f", f"{srv.base_url}/f.nc", sha(BODY), "f.nc"))
    assert code == 0
    assert [p for p, _ in srv.requests] == ["/f.nc"] * 3
    assert (tmp_path / "data/f.nc").read_bytes() == BODY


def test_gives_up_after_the_configured_attempts(tmp_path: Path, capsys) -> None:
    with serve({"/f.nc": Resource(BODY, fail_first=10)}) as srv:
        code = fetch(tmp_path, entry("f", f"{srv.base_url}/f.nc", sha(BODY), "f.nc"))
    assert code == 1
    assert len(srv.requests) == FAST["attempts"]
    assert "HTTP 500" in capsys.readouterr().out
    assert not (tmp_path / "data/f.nc").exists()


def test_client_error_is_not_retried(tmp_path: Path, capsys) -> None:
    with serve({}) as srv:
        code = fetch(tmp_path, entry("gone", f"{srv.base_url}/nope.nc", sha(BODY), "f.nc"))
    assert code == 1
    assert len(srv.requests) == 1
    assert "HTTP 404" in capsys.readouterr().out


def test_mirror_is_used_when_first_url_fails(tmp_path: Path) -> None:
    with serve({"/good.nc": Resource(BODY)}) as srv:
        e = entry("f", "", sha(BODY), "f.nc")
        del e["url"]
        e["urls"] = [f"{srv.base_url}/missing.nc", f"{srv.base_url}/good.nc"]
        assert fetch(tmp_path, e) == 0
    assert (tmp_path / "data/f.nc").read_bytes() == BODY


def test_dropped_connection_is_resumed_with_range(tmp_path: Path) -> None:
    with serve({"/f.nc": Resource(BODY, drop_after=12_345)}) as srv:
        code = fetch(tmp_path, entry("f", f"{srv.base_url}/f.nc", sha(BODY), "f.nc"))
    assert code == 0
    assert srv.requests == [("/f.nc", None), ("/f.nc", "bytes=12345-")]
    assert (tmp_path / "data/f.nc").read_bytes() == BODY
    assert leftovers(tmp_path / "data") == ["f.nc"]


def test_partial_file_from_an_earlier_run_is_resumed(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/f.nc.part").write_bytes(BODY[:3000])
    with serve({"/f.nc": Resource(BODY)}) as srv:
        code = fetch(tmp_path, entry("f", f"{srv.base_url}/f.nc", sha(BODY), "f.nc"))
    assert code == 0
    assert srv.requests == [("/f.nc", "bytes=3000-")]
    assert (tmp_path / "data/f.nc").read_bytes() == BODY


def test_server_without_range_support_restarts_cleanly(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data/f.nc.part").write_bytes(b"stale bytes that must not survive")
    with serve({"/f.nc": Resource(BODY, ranges=False)}) as srv:
        code = fetch(tmp_path, entry("f", f"{srv.base_url}/f.nc", sha(BODY), "f.nc"))
    assert code == 0
    assert (tmp_path / "data/f.nc").read_bytes() == BODY


def test_existing_files_are_never_replaced(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "good.nc").write_bytes(BODY)
    (data / "bad.nc").write_bytes(b"user edited this")
    with serve({"/f.nc": Resource(BODY)}) as srv:
        url = f"{srv.base_url}/f.nc"
        code = fetch(
            tmp_path,
            entry("good", url, sha(BODY), "good.nc"),
            entry("bad", url, sha(BODY), "bad.nc"),
        )
    assert code == 1  # the corrupt one is reported, not repaired
    assert srv.requests == []
    assert (data / "good.nc").read_bytes() == BODY
    assert (data / "bad.nc").read_bytes() == b"user edited this"
    assert "CORRUPT" in capsys.readouterr().out


def test_no_published_checksum_prints_the_digest(tmp_path: Path, capsys) -> None:
    with serve({"/f.nc": Resource(BODY)}) as srv:
        assert fetch(tmp_path, entry("f", f"{srv.base_url}/f.nc", None, "f.nc")) == 0
    assert f"sha256 is {sha(BODY)}" in capsys.readouterr().out
    assert fetch(tmp_path, entry("f", "https://unused.invalid/f", None, "f.nc"), check=True) == 0


def test_only_selects_and_rejects_unknown_names(tmp_path: Path) -> None:
    with serve({"/a.nc": Resource(b"a"), "/b.nc": Resource(b"b")}) as srv:
        a = entry("a", f"{srv.base_url}/a.nc", sha(b"a"), "a.nc")
        b = entry("b", f"{srv.base_url}/b.nc", sha(b"b"), "b.nc")
        assert fetch(tmp_path, a, b, only=["b"]) == 0
        with pytest.raises(ConfigError, match=r"unknown entry name.*'c'.*known names: a, b"):
            fetch(tmp_path, a, b, only=["c"])
    assert [p for p, _ in srv.requests] == ["/b.nc"]


# --------------------------------------------------------------------------- registration


def test_registration_entry_explains_then_verifies(tmp_path: Path, capsys) -> None:
    e = entry("reg", "https://provider.example/page", sha(BODY), "reg/file.nc")
    e.update(access="registration", instructions="Log in and click Download.")
    assert fetch(tmp_path, e) == 0
    out = capsys.readouterr().out
    assert "needs registration" in out and "Log in and click Download." in out
    assert str((tmp_path / "data/reg/file.nc").resolve()) in out

    (tmp_path / "data/reg").mkdir(parents=True)
    (tmp_path / "data/reg/file.nc").write_bytes(BODY)
    assert fetch(tmp_path, e) == 0
    assert "sha256 verified" in capsys.readouterr().out


def test_request_entry_explains_then_counts_the_filled_folder(tmp_path: Path, capsys) -> None:
    """Per-site service answers (ORNL subsets): a folder the user fills, no checksum."""
    e = entry("subsets", "https://service.example/api", None, "subsets")
    e.update(access="request", instructions="Request each tower's window.")
    assert fetch(tmp_path, e) == 0
    out = capsys.readouterr().out
    assert "needs request" in out and "Request each tower's window." in out
    assert str((tmp_path / "data/subsets").resolve()) in out

    (tmp_path / "data/subsets").mkdir(parents=True)
    (tmp_path / "data/subsets/US-Ha1_MOD11A2.csv").write_text("xllcorner,yllcorner\n")
    assert fetch(tmp_path, e) == 0
    assert "directory present; contents not checksummed" in capsys.readouterr().out


# --------------------------------------------------------------------------- --check


def test_check_reports_present_missing_corrupt(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.nc").write_bytes(BODY)
    (data / "bad.nc").write_bytes(BODY[:-1])
    url = "https://unused.invalid/x"
    entries = [
        entry("ok", url, sha(BODY), "ok.nc"),
        entry("gone", url, sha(BODY), "gone.nc"),
        entry("bad", url, sha(BODY), "bad.nc"),
    ]
    assert fetch(tmp_path, *entries, check=True) == 1
    rows = {line.split()[0]: line.split()[2] for line in capsys.readouterr().out.splitlines()[1:4]}
    assert rows == {"ok": "present", "gone": "missing", "bad": "corrupt"}
    assert fetch(tmp_path, *entries[:2], check=True) == 0  # missing alone is not an error
    assert leftovers(data) == ["bad.nc", "ok.nc"]  # --check wrote nothing


# --------------------------------------------------------------------------- archives


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def link_member(
    name: str, target: str, kind: bytes = tarfile.SYMTYPE
) -> tuple[tarfile.TarInfo, None]:
    """A body-less member: a link by default, any other special type with ``kind``."""
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def zip_bytes(names: list[str], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in names:
            zf.writestr(name, b"payload")
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = 0o120777 << 16  # S_IFLNK
            zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_zip_entry_is_downloaded_and_unpacked(tmp_path: Path, capsys) -> None:
    archive = zip_bytes(["a.txt", "sub/b.txt"])
    with serve({"/x.zip": Resource(archive)}) as srv:
        e = entry("z", f"{srv.base_url}/x.zip", sha(archive), "pkg", unpack="zip")
        assert fetch(tmp_path, e) == 0
    out_dir = tmp_path / "data/pkg"
    assert (out_dir / "sub/b.txt").read_bytes() == b"payload"
    assert (out_dir / MARKER).read_text().strip() == sha(archive)
    assert leftovers(tmp_path / "data") == [
        "pkg/.fluxbridge-source.sha256",
        "pkg/a.txt",
        "pkg/sub/b.txt",
    ]
    capsys.readouterr()
    assert fetch(tmp_path, e, check=True) == 0
    assert "present" in capsys.readouterr().out


UNSAFE_TARS = {
    "tar slip": [file_member("../evil.txt", b"x")],
    "absolute": [file_member("/tmp/evil.txt", b"x")],
    "symlink out": [link_member("link", "../../outside")],
    "absolute symlink": [link_member("link", "/etc")],
    "hardlink out": [link_member("hard", "../x", tarfile.LNKTYPE)],
    "device": [link_member("dev", "", tarfile.CHRTYPE)],
}


@pytest.mark.parametrize("case", sorted(UNSAFE_TARS))
def test_unsafe_tar_is_rejected_and_nothing_written(tmp_path: Path, case: str) -> None:
    archive = tmp_path / "in.tar.gz"
    archive.write_bytes(tar_bytes([file_member("fine.txt", b"ok"), *UNSAFE_TARS[case]]))
    dest = tmp_path / "out" / "pkg"
    with pytest.raises(UnsafeArchiveError, match=str(archive)):
        safe_unpack(archive, "tar.gz", dest, source_sha256=None)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    ("names", "symlink"), [(["../evil.txt"], None), (["/abs.txt"], None), (["ok.txt"], "ln")]
)
def test_unsafe_zip_is_rejected(tmp_path: Path, names: list[str], symlink: str | None) -> None:
    archive = tmp_path / "in.zip"
    archive.write_bytes(zip_bytes(names, symlink))
    with pytest.raises(UnsafeArchiveError):
        safe_unpack(archive, "zip", tmp_path / "out" / "pkg", source_sha256=None)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_tar_with_inner_symlink_is_accepted(tmp_path: Path) -> None:
    archive = tmp_path / "in.tar.gz"
    archive.write_bytes(tar_bytes([file_member("d/f.txt", b"ok"), link_member("d/l", "f.txt")]))
    dest = safe_unpack(archive, "tar.gz", tmp_path / "pkg", source_sha256=None)
    assert (dest / "d/l").read_bytes() == b"ok"


def test_tar_slip_via_fetch_fails_and_keeps_no_directory(tmp_path: Path, capsys) -> None:
    archive = tar_bytes([file_member("../../evil.txt", b"x")])
    with serve({"/x.tar.gz": Resource(archive)}) as srv:
        e = entry("slip", f"{srv.base_url}/x.tar.gz", sha(archive), "pkg", unpack="tar.gz")
        assert fetch(tmp_path, e) == 1
    assert "'../../evil.txt'" in capsys.readouterr().out
    assert not (tmp_path / "data/pkg").exists()
    assert not (tmp_path / "evil.txt").exists()
