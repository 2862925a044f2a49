"""The metric-name extractor the rule and dashboard tests rely on."""

from ops.promql import metric_names, unknown_metrics


def test_finds_metrics_and_ignores_functions_labels_and_keywords():
    expr = (
        "histogram_quantile(0.95, sum by (le, via) (rate(beacon_acknowledgement_latency_seconds_bucket"
        '{via=~"sms|link"}[5m]))) > 0 and on (group) time() - max without (instance) '
        "(beacon_timer_last_run_timestamp_seconds offset 1h) unless up == 0"
    )
    assert metric_names(expr) == {
        "beacon_acknowledgement_latency_seconds_bucket",
        "beacon_timer_last_run_timestamp_seconds",
        "up",
    }
    assert unknown_metrics(expr) == set()


def test_reports_a_misspelt_metric():
    assert unknown_metrics("sum(rate(beacon_alerts_raised[5m]))") == {"beacon_alerts_raised"}
    assert unknown_metrics('beacon_notifications_total{outcome="sent"} + beacon_no_such_thing') == {
        "beacon_no_such_thing"
    }
