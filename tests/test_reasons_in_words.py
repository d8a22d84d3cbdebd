"""Reasons in words (``railpm.models.explain.reason_in_words``): the one sentence a feature becomes in the
review app, the static report and ``railpm score``."""

from __future__ import annotations

import json

import pytest

from railpm.models.explain import reason_in_words, reasons_in_words


@pytest.mark.parametrize("feature, value, component, text, signal", [
    ("axle_bearing_temp_c_z_mean_1d", 5.63, None,
     "axle-box bearing temperature (degC) 5.6 sd above this vehicle's normal, last day", "axle_bearing_temp_c"),
    ("motor_current_imbalance_pct_z_mean_7d", -2.04, None,
     "phase current imbalance (%) 2.0 sd below this vehicle's normal, last 7 days", "motor_current_imbalance_pct"),
    # the generic component slots resolve to the component's own signal, primary first
    ("comp_signal_z_slope_7d", 0.125, "wheelset", "axle-box bearing temperature (degC) rising by 0.12 sd a day, last 7 days",
     "axle_bearing_temp_c"),
    ("comp_signal2_z_min_30d", -3.0, "wheelset",
     "wheel flange thickness (worn wheels are thinner) (mm): lowest reading 3.0 sd below this vehicle's normal, last 30 days",
     "wheel_flange_mm"),
    ("comp_signal2_z_min_30d", -3.0, "doors", "comp signal2: no reading, last 30 days", None),
    ("faults_code_rg_110_7d", 3.0, None, "3 × fault RG-110 (axle-box temperature high warning), last 7 days", None),
    ("comp_precursor_faults_30d", 2.0, "wheelset", "2 × fault RG-110 (axle-box temperature high warning), last 30 days", None),
    ("comp_days_since_replacement", 1234.0, "brake_unit", "1,234 days since the brake unit was last replaced", None),
    ("faults_grade_a_30d", 1.0, None, "1 × grade A faults, last 30 days", None),
    ("something_new", 1.5, None, "something new = 1.50", None),
])
def test_a_feature_reads_as_a_sentence_naming_signal_unit_direction_and_window(feature, value, component, text, signal):
    assert reason_in_words(feature, None if "no reading" in text else value, component) == (text, signal)


def test_unreadable_reasons_are_no_reasons_rather_than_an_error():
    assert reasons_in_words("not json") == [] and reasons_in_words(None) == [] and reasons_in_words('{"a": 1}') == []
    parsed = reasons_in_words(json.dumps([{"feature": "faults_grade_b_1d", "value": 2.0, "contribution": 0.1}, {"x": 1}]))
    assert [(r["text"], r["contribution"]) for r in parsed] == [("2 × grade B faults, last day", 0.1)]
