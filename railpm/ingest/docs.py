"""GX Data Docs: the human-readable validation report of every ingested file, as a static HTML site.

Each ingest step stores its GX validation result (unexpected lists cut short) under
``runs/validations/``; this builds the site from all of them in a fresh ephemeral context, so it can run as
its own task after any number of parallel ingest steps.

GX 1.x writes the values it shows (unexpected values, value sets, names) into the HTML as they are, and
landing data and file names are data: every string of a result is HTML-escaped here before GX renders it,
and pages are named by the plain part name, so a ``<script>`` in a delivery shows as text.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

from railpm.escaping import html_text
from railpm.ingest import runs


def escaped(document):
    """Every string value of a JSON document HTML-escaped (keys and numbers as they are)."""
    if isinstance(document, str):
        return html_text(document)
    if isinstance(document, list):
        return [escaped(v) for v in document]
    if isinstance(document, dict):
        return {k: escaped(v) for k, v in document.items()}
    return document


def build_data_docs(runs_dir: Path, data_docs_dir: Path) -> Path | None:
    """(Re)build the Data Docs site from the stored validation results; returns its index page."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from railpm.expectations import gx_context

    records = [r for r in runs.read_run_records(runs_dir) if r.get("status") == "ingested"]
    if not records:
        return None
    context = gx_context()
    site = "railpm"
    if data_docs_dir.exists():
        shutil.rmtree(data_docs_dir)
    config = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    if site in (context.config.data_docs_sites or {}):
        context.update_data_docs_site(site, config)
    else:
        context.add_data_docs_site(site, config)
    schema = ExpectationSuiteValidationResultSchema()
    store = context.validation_results_store
    identifiers = []
    for record in records:
        path = runs.validation_path(runs_dir, record["feed"], record["part"])
        if not path.exists():
            continue
        result = schema.load(escaped(json.loads(path.read_text())))
        identifier = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=record["feed"]),
            run_id=RunIdentifier(run_name=record["part"], run_time=datetime.fromisoformat(record["reference_time"])),
            batch_identifier=record["part"],
        )
        store.set(identifier, result)
        identifiers.append(identifier)
    context.build_data_docs(site_names=[site], resource_identifiers=identifiers)
    return data_docs_dir / "index.html"
