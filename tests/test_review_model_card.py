"""The model card of each registered version, read from a real MLflow store (SQLite under tmp) through the app."""

from __future__ import annotations

import re

from helpers import log_version


def test_each_version_has_a_card_linked_from_the_model_page(settings):
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    champion = log_version(settings, 0.42, "champion")
    challenger = log_version(settings, 0.40, "challenger")
    settings.review.mlflow_ui_url = "http://127.0.0.1:5000"
    with TestClient(create_app(settings)) as client:
        models = client.get("/models").text
        assert f'href="/models/{champion}"' in models and f'href="/models/{challenger}"' in models
        card = client.get(f"/models/{challenger}")
        missing = client.get("/models/99")
    assert card.status_code == 200
    html = card.text
    assert f"Model version {challenger}" in html and "now <b>challenger</b>" in html
    assert re.search(r"Registered \d{4}-\d\d-\d\d \d\d:\d\d UTC", html)
    # training window, rows (an integer with a thousands separator) and sampling in words
    assert "training window</dt><dd>2024-10-01 to 2025-01-09" in html
    assert "training rows (component-days)</dt><dd>84,000" in html and "features</dt><dd>389" in html
    assert "healthy sample share</dt><dd>25%" in html and "25% of the healthy component-days" in html
    assert "2024-12-21 to 2025-01-09" in html  # the backtest's test periods
    assert "learning rate</dt><dd>0.060" in html  # the recipe
    # the decision in words, from the logged figures, not the logged shorthand alone
    assert (f"Backtest PR-AUC 0.400, beats the best baseline (age/usage baseline, 0.240) by the margin of 0.02. "
            f"The champion then was version {champion}. So it was registered as challenger") in html
    # counts are sums over the test folds (whole numbers), never a mean printed as a count
    assert "failures (all test folds)" in html and "<td class=\"num\">9</td>" in html and "4.50" not in html
    assert f'href="http://127.0.0.1:5000/#/experiments/' in html
    assert missing.status_code == 404 and "registered versions are 1, 2" in missing.text


def test_the_model_page_states_the_gate_in_a_sentence(settings):
    from fastapi.testclient import TestClient

    from railpm.review.app import create_app

    log_version(settings, 0.42, "champion")
    with TestClient(create_app(settings)) as client:
        html = client.get("/models").text
    assert ("Backtest PR-AUC 0.420, beats the best baseline (age/usage baseline, 0.252) by the margin of 0.02. "
            "There was no champion yet. So it became the champion") in html
    # the training plots are laid out at their drawn size, one under the other, not squeezed to 480 px
    assert '<div class="figures"><figure><img src="data:image/png;base64,' in html and "max-width:480px" not in html
    assert re.search(r"\.figures img \{ max-width: 100%; height: auto;", html)
