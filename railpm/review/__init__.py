"""The review app and static report: what reliability engineers and planners look at and correct.

Why FastAPI + Jinja2 (both already installed with Airflow, so no new dependency):

- Server-rendered HTML pages need no JavaScript build step and work in any browser, including headless
  Chromium in the tests.
- The same Jinja templates, page builders and plotting functions render the static report
  (``railpm report``), so the app and the report can never drift apart.
- FastAPI validates form and JSON payloads with pydantic models and answers bad input with a 4xx that
  names the field, which is what the feedback endpoint needs.
- Streamlit was the alternative; it re-runs a script per interaction, cannot export static pages and would
  add a large dependency tree.

Floors: ``data`` (small reads of each layer, tolerant of a layer not built yet) -> ``plots`` (one
matplotlib figure per function, inline SVG) -> ``pages`` (one context builder per page) -> ``app`` and
``report`` (the two ways to serve the pages).
"""
