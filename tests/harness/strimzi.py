"""The ACLs of a Strimzi ``KafkaUser`` in deploy/k8s/kafka.yaml, as Kafka admin-API ACLs, so
that a test can grant exactly what production grants and run Beacon's clients with it."""

from __future__ import annotations

from pathlib import Path

import yaml
from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

KAFKA_MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "kafka.yaml"

_RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "cluster": ResourceType.CLUSTER,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
}
_PATTERNS = {"literal": ACLResourcePatternType.LITERAL, "prefix": ACLResourcePatternType.PREFIXED}
_PERMISSIONS = {"allow": ACLPermissionType.ALLOW, "deny": ACLPermissionType.DENY}


def kafka_user(name: str, manifest: Path = KAFKA_MANIFEST) -> dict:
    (user,) = [
        d
        for d in yaml.safe_load_all(manifest.read_text())
        if d and d.get("kind") == "KafkaUser" and d["metadata"]["name"] == name
    ]
    return user


def _operation(name: str) -> ACLOperation:
    # Strimzi spells them as Kafka's AclOperation does (IdempotentWrite, DescribeConfigs, ...).
    snake = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()
    return ACLOperation[snake]


def user_acls(name: str, manifest: Path = KAFKA_MANIFEST) -> list[ACL]:
    """Every (resource, operation) the ``KafkaUser`` ``name`` is allowed or denied, for any
    host; the principal is ``User:<name>`` (``KafkaCluster.grant`` replaces it)."""
    acls = []
    for rule in kafka_user(name, manifest)["spec"]["authorization"]["acls"]:
        resource = rule["resource"]
        resource_type = _RESOURCE_TYPES[resource["type"]]
        pattern = ResourcePattern(
            resource_type,
            "kafka-cluster" if resource_type is ResourceType.CLUSTER else resource["name"],
            _PATTERNS[resource.get("patternType", "literal")],
        )
        permission = _PERMISSIONS[rule.get("type", "allow")]
        host = rule.get("host", "*")
        acls += [ACL(f"User:{name}", host, _operation(op), permission, pattern) for op in rule["operations"]]
    return acls
