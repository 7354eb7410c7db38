"""`sutram validate`: definitions checked offline, each problem named with file, step and field."""

from __future__ import annotations

from cli import main as cli
from tests.support import REPO


def test_the_shipped_workflows_validate(capsys):
    assert cli.main(["validate", str(REPO / "workflows")]) == 0
    assert "ok    " in capsys.readouterr().out


def test_an_invalid_definition_is_reported_with_its_location_and_a_failing_exit(tmp_path, capsys):
    (tmp_path / "good.yaml").write_text("name: good\nsteps:\n  - {id: first, type: llm, prompt: hi}\n")
    (tmp_path / "bad.yaml").write_text(
        "name: bad\nsteps:\n  - {id: first, type: llm, prompt: hi, timeout_seconds: 0}\n"
    )

    assert cli.main(["validate", str(tmp_path)]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"error {tmp_path / 'bad.yaml'}: step 'first' (steps[0]), field 'timeout_seconds': "
        "Input should be greater than or equal to 1",
        f"ok    {tmp_path / 'good.yaml'}: good, 1 top-level steps",
    ]


def test_an_empty_folder_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["validate", str(tmp_path)]) == 2
    assert "no workflow files" in capsys.readouterr().err
