"""The notebooks run top to bottom on the model fleet (a real kernel via nbclient), so they never rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from railpm.models.tasks import score_fleet

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served_fleet(model_fleet, trained_fleet):
    """The model fleet with a champion in its default MLflow store and the latest day scored."""
    score_fleet(model_fleet)
    return model_fleet


def run_notebook(path: Path, parameters: dict) -> nbformat.NotebookNode:
    """Execute a notebook with its ``parameters`` cell overridden (papermill's convention, done by hand)."""
    notebook = nbformat.read(path, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    tagged[0].source += "\n" + "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    return notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_on_the_fleet(path, served_fleet):
    parameters = {"DATA_ROOT": str(served_fleet.data_root)}
    if path.stem == "retraining_walkthrough":
        parameters["RECIPE"] = {**served_fleet.model.recipe, "max_iter": 20, "life_max_iter": 10}  # it runs, fast
    notebook = run_notebook(path, parameters)
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # Every code cell after the parameters produced something to look at (a table, a figure or text).
    shown = [c for c in notebook.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    assert all(c.outputs for c in shown), [c.source[:60] for c in shown if not c.outputs]


def test_notebooks_import_from_the_package_only():
    """No logic lives only in a notebook: no function or class is defined in one."""
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert "def " not in cell.source and "class " not in cell.source, (path.name, cell.source[:80])
