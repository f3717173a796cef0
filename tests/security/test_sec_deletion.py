"""Issue 11 §2: nothing outside Hearth's folders is ever deleted, whatever a registry row says.

The helper (`agent.foundation.paths.safe_remove`) every deletion goes through, and the two reproduced
attacks: a row whose `path` names another folder (`hearth adapters delete`) and a row whose
id climbs out of the adapters root (`recover()` in every refresh). The rows are written
straight through the Store API, as a crafted import could before issue 11a closed that door.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli.main import main
from agent.foundation import paths
from memory.embed import HashEmbedder
from memory.store import Store


def victim(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "precious.txt").write_text("not Hearth's")
    return folder


def test_safe_remove_deletes_inside_and_refuses_everything_else(tmp_path: Path) -> None:
    inside = paths.adapters_dir() / "v1"
    inside.mkdir()
    (inside / "a").write_text("x")
    assert paths.safe_remove(inside) and not inside.exists()
    assert paths.safe_remove(paths.cache_dir() / "gone") is False  # absent: nothing to do
    outside = victim(tmp_path / "outside")
    for bad in (outside, outside / "precious.txt", paths.data_dir(), paths.cache_dir(),
                paths.adapters_dir() / ".." / ".." / ".." / "outside", Path("/")):
        with pytest.raises(paths.UnsafePathError, match="outside Hearth's folders|plain"):
            paths.safe_remove(bad)
    assert (outside / "precious.txt").read_text() == "not Hearth's"


def test_safe_remove_never_follows_a_symlink_out(tmp_path: Path) -> None:
    outside = victim(tmp_path / "outside")
    link = paths.data_dir() / "link"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(paths.UnsafePathError):
        paths.safe_remove(link / "precious.txt")  # its real parent is outside
    assert paths.safe_remove(link) and not link.is_symlink()  # the link itself goes
    assert (outside / "precious.txt").exists()


def test_safe_remove_within_a_work_folder(tmp_path: Path) -> None:
    work = victim(tmp_path / "run")
    paths.safe_remove(work / "precious.txt", within=work)
    assert not (work / "precious.txt").exists()
    with pytest.raises(paths.UnsafePathError):
        paths.safe_remove(work, within=work)  # never the folder itself
    with pytest.raises(paths.UnsafePathError):
        paths.safe_remove(tmp_path / "elsewhere", within=work)


def test_adapters_delete_ignores_a_stored_path_elsewhere(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    target = victim(tmp_path / "some" / "dir")
    with Store.open(embedder=HashEmbedder()) as store:
        store.add_adapter_version(id="v7", path=str(target), status="retired")
    assert main(["adapters", "delete", "v7"]) == 0
    assert (target / "precious.txt").exists(), "hearth adapters delete removed a foreign folder"
    with Store.open(embedder=HashEmbedder()) as store:
        assert store.get_adapter_version("v7")["path"] is None


def test_recover_ignores_an_id_that_climbs_out_of_the_adapters_root(tmp_path: Path) -> None:
    from adapters.training import registry

    root = paths.adapters_dir()
    climb = "../../../somewhere"
    target = victim((root / climb).resolve())
    assert not target.is_relative_to(paths.home_override() or Path("/nonexistent"))
    with Store.open(embedder=HashEmbedder()) as store:
        store.add_adapter_version(id=climb, status="training")
        done = registry.recover(store)
        assert store.get_adapter_version(climb)["status"] == "failed"
    assert (target / "precious.txt").exists(), f"recover() deleted {target}: {done}"


def test_a_row_with_a_bad_id_is_never_served_or_activated(tmp_path: Path) -> None:
    from adapters.training import registry
    from adapters.training.errors import AdapterError

    with Store.open(embedder=HashEmbedder()) as store:
        store.add_adapter_version(id="../x", path=str(tmp_path), status="candidate",
                                  base_checksum="c")
        with pytest.raises(AdapterError, match="not a Hearth version"):
            registry.activate(store, "../x", "c")
