"""Every Prometheus metric Beacon exports, defined once.

Conventions: ``beacon_`` prefix, ``_total`` counters, ``_seconds`` histograms, base
units, bounded label values. Never a child or episode reference as a label.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
HUMAN_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)

# Ingest
EVENTS_RECEIVED = Counter(
    "beacon_events_received_total",
    "Events received, by source, type and outcome (accepted, duplicate, rejected, dead_lettered).",
    ["source", "type", "outcome"],
)
EVENTS_REJECTED = Counter("beacon_events_rejected_total", "Events refused, by reason class.", ["source", "reason"])
INGEST_LATENCY = Histogram(
    "beacon_ingest_request_duration_seconds",
    "HTTP ingest request time, until Kafka acknowledged.",
    ["status"],
    buckets=LATENCY_BUCKETS,
)

# Correlator
ALERTS_RAISED = Counter("beacon_alerts_raised_total", "Alerts raised, by rule and severity.", ["rule", "severity"])
ALERTS_RESOLVED = Counter("beacon_alerts_resolved_total", "Alerts resolved, by rule.", ["rule"])
OPEN_EPISODES = Gauge("beacon_open_episodes", "Missing episodes currently open (this worker's partitions).")
CHILDREN_MISSING = Gauge("beacon_children_missing", "Children missing now, by police risk grade.", ["risk"])
EVENTS_PROCESSED = Counter(
    "beacon_correlator_events_total",
    "Events processed by the correlator, by outcome (applied, duplicate).",
    ["outcome"],
)

# Notifier
NOTIFICATIONS = Counter(
    "beacon_notifications_total",
    "Notifications, by channel and outcome (sent, delivered, failed, undelivered).",
    ["channel", "outcome"],
)
NOTIFICATIONS_FAILED = Counter(
    "beacon_notifications_failed_total", "Notification failures, by channel and reason class.", ["channel", "reason"]
)
ALERTS_ROUTED_AGAIN = Counter(
    "beacon_notifier_alerts_routed_again_total",
    "Alerts on beacon.alerts that no escalation showed after the grace period, routed again (notifier/sweep.py).",
)
ALERTS_NEVER_TAKEN_IN = Counter(
    "beacon_notifier_alerts_never_taken_in_total",
    "Alerts the safety net routed again five times that still showed no escalation: nobody was paged (notifier/sweep.py).",
)
ESCALATION_STEPS = Counter("beacon_escalation_steps_total", "Escalation steps reached, by step number.", ["step"])
ACK_LATENCY = Histogram(
    "beacon_acknowledgement_latency_seconds",
    "From first page to acknowledgement, by how it came.",
    ["via"],
    buckets=HUMAN_BUCKETS,
)
END_TO_END_LATENCY = Histogram(
    "beacon_end_to_end_latency_seconds",
    "From the triggering event's time to the first page sent.",
    buckets=LATENCY_BUCKETS,
)
UNACKNOWLEDGED_CRITICAL = Gauge(
    "beacon_unacknowledged_alerts",
    "Alerts paged and not yet acknowledged, by severity and whether the escalation chain is exhausted.",
    ["severity", "exhausted"],
)

# Every worker
TIMER_HEARTBEAT = Gauge(
    "beacon_timer_last_run_timestamp_seconds", "Unix time a periodic loop last completed.", ["loop"]
)
CONSUMER_COMMITTED_OFFSET = Gauge(
    "beacon_consumer_committed_offset",
    "Last committed offset, by consumer group, topic and partition.",
    ["group", "topic", "partition"],
)
CONSUMER_LAG = Gauge(
    "beacon_consumer_lag_records", "Records behind the end of the partition.", ["group", "topic", "partition"]
)

CONSOLE_LOGIN_FAILURES = Counter(
    "beacon_console_login_failures_total",
    "Console logins refused, by reason (wrong_password, throttled, locked; OIDC: oidc_invalid, oidc_claims).",
    ["reason"],
)
DEAD_LETTERS = Counter(
    "beacon_dead_letters_total",
    "Records a worker could not process and wrote to beacon.events.dlq, by the topic they came from and reason class.",
    ["topic", "reason"],
)
API_KEY_RECORDS_SKIPPED = Counter(
    "beacon_api_key_records_skipped_total",
    "Records of beacon.apikeys an ingest replica could not read and skipped, by reason class.",
    ["reason"],
)
CONSOLE_RECORDS_SKIPPED = Counter(
    "beacon_console_records_skipped_total",
    "Records the console's projection could not read and skipped, by topic and reason class.",
    ["topic", "reason"],
)
