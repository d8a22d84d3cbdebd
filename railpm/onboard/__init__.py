"""Bring your own fleet: an operator's exports (maintenance system, train control system, condition monitoring,
fleet register) onboarded onto railpm's landing feeds by mapping files, not Python.

- :mod:`railpm.onboard.mapping`: the mapping file (YAML) and its schema, errors naming file, line and key;
- :mod:`railpm.onboard.transform`: one source file through one source mapping, every row accounted for;
- :mod:`railpm.onboard.run`: a folder of exports -> landing files, catalogue, settings, held rows;
- :mod:`railpm.onboard.profile`: what was found, and what the gate will quarantine;
- :mod:`railpm.onboard.draft`: a first mapping drafted from the files' headers (``railpm onboard --init``).

``railpm/onboard/mappings/`` holds the mappings of the public data sets (C-MAPSS, Azure PdM).
"""

from __future__ import annotations

from pathlib import Path

from railpm.onboard.mapping import MappingError, load_mapping
from railpm.onboard.run import Onboarded, onboard, write_onboarded

MAPPINGS_DIR = Path(__file__).resolve().parent / "mappings"
"""Mappings shipped with railpm (package data)."""

__all__ = ["MAPPINGS_DIR", "MappingError", "Onboarded", "load_mapping", "onboard", "write_onboarded"]
