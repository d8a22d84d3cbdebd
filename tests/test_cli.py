"""The ``railpm`` command line as a newcomer first sees it."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from railpm.cli import COMMAND_ORDER, app


def test_help_lists_every_command_in_pipeline_order():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    listed = re.findall(r"^│ ([a-z][a-z-]*) ", result.output, flags=re.MULTILINE)
    assert listed == list(COMMAND_ORDER), listed
    steps = [listed.index(name) for name in ("generate", "ingest", "records", "train", "score", "plan")]
    assert steps == sorted(steps), "the steps appear in the order data moves through them"
