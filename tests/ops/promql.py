"""Small helpers for checking PromQL in rules and dashboards against Beacon's metrics."""

from __future__ import annotations

import re

from prometheus_client import REGISTRY

import beacon.runtime.metrics  # noqa: F401 - registers every Beacon metric

# Series Prometheus itself provides, which Beacon's rules and panels may use.
PROMETHEUS_SERIES = frozenset({"up"})
KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "offset",
        "bool",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    }
)


def beacon_series_names() -> set[str]:
    """Every series name the metrics in beacon.runtime.metrics can expose (counters' _total,
    histograms' _bucket/_sum/_count, ...)."""
    suffixes = {
        "counter": ("_total",),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count", ""),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in REGISTRY.collect():
        if family.name.startswith("beacon_"):
            names.update(f"{family.name}{suffix}" for suffix in suffixes[family.type])
    return names


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names or inside strings, label matchers or ranges."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\w+", " ", text)
    text = re.sub(r"\$\w+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS or re.fullmatch(r"\d+[smhdwy]", name):
            continue
        names.add(name)
    return names


def unknown_metrics(expr: str) -> set[str]:
    return metric_names(expr) - beacon_series_names() - PROMETHEUS_SERIES
