"""Write deploy/k8s/monitoring.yaml's PrometheusRule from deploy/prometheus/beacon-rules.yml,
the one source of Beacon's alert rules (tests/ops/test_deploy.py fails when they differ).

    python deploy/k8s/sync_prometheusrule.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
RULES = HERE.parent / "prometheus" / "beacon-rules.yml"
MONITORING = HERE / "monitoring.yaml"

HEADER = """\
# Prometheus Operator resources: a ServiceMonitor scraping every Beacon Service labelled
# beacon/scrape=true (job label beacon-<service>, as in deploy/prometheus/prometheus.yml),
# and Beacon's alert rules as a PrometheusRule. The PrometheusRule is GENERATED from
# deploy/prometheus/beacon-rules.yml by deploy/k8s/sync_prometheusrule.py: edit the rules
# file, then run the script. Add the labels your Prometheus' ruleSelector and
# serviceMonitorSelector expect (e.g. release: kube-prometheus-stack).
"""

SERVICE_MONITOR = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": {"name": "beacon", "namespace": "beacon", "labels": {"app.kubernetes.io/part-of": "beacon"}},
    "spec": {
        "jobLabel": "beacon/job",
        "selector": {"matchLabels": {"app.kubernetes.io/part-of": "beacon", "beacon/scrape": "true"}},
        "namespaceSelector": {"matchNames": ["beacon"]},
        "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}],
    },
}


def prometheus_rule() -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "beacon", "namespace": "beacon", "labels": {"app.kubernetes.io/part-of": "beacon"}},
        "spec": {"groups": yaml.safe_load(RULES.read_text())["groups"]},
    }


def render() -> str:
    return HEADER + yaml.safe_dump_all([SERVICE_MONITOR, prometheus_rule()], sort_keys=False, width=120)


if __name__ == "__main__":
    MONITORING.write_text(render())
    print(f"wrote {MONITORING}")
