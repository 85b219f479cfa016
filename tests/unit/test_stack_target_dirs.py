"""Where an operator command looks for the embedded stack is decided when it runs, not when it is imported."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from chalicelib import stack_target


def test_the_working_directory_of_the_call_is_looked_in_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    importlib.reload(stack_target)  # imported from elsewhere: nothing about the folders may be fixed at import
    (tmp_path / ".stack").mkdir()
    (tmp_path / ".stack" / "database_url").write_text("postgresql://here/db\n")
    monkeypatch.chdir(tmp_path)
    assert stack_target.stack_dirs()[0] == tmp_path / ".stack"
    assert stack_target.resolve("migrate", {})["DATABASE_URL"] == "postgresql://here/db"


def test_importing_the_module_reads_no_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_cwd() -> Path:
        raise AssertionError("the working directory was read at import")

    monkeypatch.setattr(Path, "cwd", staticmethod(no_cwd))
    importlib.reload(stack_target)
