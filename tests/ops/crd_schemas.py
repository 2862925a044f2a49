"""Structural JSON Schemas for the custom resources in deploy/k8s (no Kubernetes schema
package ships CRD schemas). They check what Beacon's manifests rely on: apiVersion, kind,
metadata, the required spec fields and their types and enums, following the Strimzi
(kafka.strimzi.io/v1beta2) and Prometheus Operator (monitoring.coreos.com/v1) API
references. They are NOT the operators' full CRD schemas: unknown extra fields in spec
sub-objects other than those listed as closed are not caught."""

from __future__ import annotations

from typing import Any

_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}
_QUANTITY = {"type": ["string", "integer"], "pattern": r"^[0-9.]+([KMGTPE]i?|m)?$"}
_DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}


def _resource(api_version: str, kind: str, spec: dict[str, Any], cluster_label: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "type": "object",
        "required": ["name", "namespace"],
        "properties": {
            "name": _NAME,
            "namespace": _NAME,
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    if cluster_label:
        metadata["required"] = ["name", "namespace", "labels"]
        metadata["properties"]["labels"] = {
            "type": "object",
            "required": ["strimzi.io/cluster"],
            "additionalProperties": {"type": "string"},
        }
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": metadata,
            "spec": spec,
        },
    }


KAFKA_NODE_POOL = _resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaNodePool",
    {
        "type": "object",
        "required": ["replicas", "roles", "storage"],
        "additionalProperties": False,
        "properties": {
            "replicas": {"type": "integer", "minimum": 1},
            "roles": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": ["controller", "broker"]}},
            "storage": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"enum": ["ephemeral", "persistent-claim", "jbod"]},
                    "volumes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["id", "type"],
                            "additionalProperties": False,
                            "properties": {
                                "id": {"type": "integer", "minimum": 0},
                                "type": {"enum": ["ephemeral", "persistent-claim"]},
                                "size": _QUANTITY,
                                "class": {"type": "string"},
                                "deleteClaim": {"type": "boolean"},
                                "kraftMetadata": {"enum": ["shared"]},
                            },
                        },
                    },
                },
            },
            "resources": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "requests": {"type": "object", "additionalProperties": _QUANTITY},
                    "limits": {"type": "object", "additionalProperties": _QUANTITY},
                },
            },
            "template": {"type": "object"},
            "jvmOptions": {"type": "object"},
        },
    },
    cluster_label=True,
)

KAFKA = _resource(
    "kafka.strimzi.io/v1beta2",
    "Kafka",
    {
        "type": "object",
        "required": ["kafka"],
        "additionalProperties": False,
        "properties": {
            "kafka": {
                "type": "object",
                "required": ["listeners"],
                "additionalProperties": False,
                "properties": {
                    "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
                    "metadataVersion": {"type": "string", "pattern": r"^\d+\.\d+-IV\d+$"},
                    "listeners": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "port", "type", "tls"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "pattern": r"^[a-z0-9]{1,11}$"},
                                "port": {"type": "integer", "minimum": 9092},
                                "type": {
                                    "enum": ["internal", "route", "loadbalancer", "nodeport", "ingress", "cluster-ip"]
                                },
                                "tls": {"type": "boolean"},
                                "authentication": {"type": "object"},
                                "configuration": {"type": "object"},
                            },
                        },
                    },
                    "config": {"type": "object"},
                    "authorization": {"type": "object"},
                    "rack": {"type": "object"},
                    "template": {"type": "object"},
                    "metricsConfig": {"type": "object"},
                },
            },
            "entityOperator": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"topicOperator": {"type": "object"}, "userOperator": {"type": "object"}},
            },
            "cruiseControl": {"type": "object"},
            "kafkaExporter": {"type": "object"},
        },
    },
)

KAFKA_TOPIC = _resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaTopic",
    {
        "type": "object",
        "required": ["partitions", "replicas"],
        "additionalProperties": False,
        "properties": {
            "topicName": {"type": "string", "pattern": r"^[a-zA-Z0-9._-]{1,249}$"},
            "partitions": {"type": "integer", "minimum": 1},
            "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
            "config": {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean"]}},
        },
    },
    cluster_label=True,
)

_ACL_OPERATIONS = [
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
]

KAFKA_USER = _resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaUser",
    {
        "type": "object",
        "required": ["authentication"],
        "additionalProperties": False,
        "properties": {
            "authentication": {
                "type": "object",
                "required": ["type"],
                "additionalProperties": False,
                "properties": {
                    "type": {"enum": ["tls", "tls-external", "scram-sha-512"]},
                    "password": {"type": "object"},
                },
            },
            "authorization": {
                "type": "object",
                "required": ["type", "acls"],
                "additionalProperties": False,
                "properties": {
                    "type": {"const": "simple"},
                    "acls": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["resource", "operations"],
                            "additionalProperties": False,
                            "properties": {
                                "resource": {
                                    "type": "object",
                                    "required": ["type"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "type": {"enum": ["topic", "group", "cluster", "transactionalId"]},
                                        "name": {"type": "string", "minLength": 1},
                                        "patternType": {"enum": ["literal", "prefix"]},
                                    },
                                },
                                "operations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "uniqueItems": True,
                                    "items": {"enum": _ACL_OPERATIONS},
                                },
                                "type": {"enum": ["allow", "deny"]},
                                "host": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "quotas": {"type": "object"},
            "template": {"type": "object"},
        },
    },
    cluster_label=True,
)

SERVICE_MONITOR = _resource(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    {
        "type": "object",
        "required": ["selector", "endpoints"],
        "additionalProperties": False,
        "properties": {
            "jobLabel": {"type": "string"},
            "selector": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": False,
                "properties": {
                    "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "matchExpressions": {"type": "array"},
                },
            },
            "namespaceSelector": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "matchNames": {"type": "array", "items": {"type": "string"}},
                    "any": {"type": "boolean"},
                },
            },
            "endpoints": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "anyOf": [{"required": ["port"]}, {"required": ["targetPort"]}],
                    "properties": {
                        "port": {"type": "string"},
                        "targetPort": {"type": ["string", "integer"]},
                        "path": {"type": "string", "pattern": "^/"},
                        "scheme": {"enum": ["http", "https"]},
                        "interval": _DURATION,
                        "scrapeTimeout": _DURATION,
                        "relabelings": {"type": "array"},
                        "metricRelabelings": {"type": "array"},
                    },
                },
            },
        },
    },
)

_RULE = {
    "type": "object",
    "additionalProperties": False,
    "oneOf": [{"required": ["alert", "expr"]}, {"required": ["record", "expr"]}],
    "properties": {
        "alert": {"type": "string"},
        "record": {"type": "string"},
        "expr": {"type": ["string", "integer"]},
        "for": _DURATION,
        "keep_firing_for": _DURATION,
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

PROMETHEUS_RULE = _resource(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    {
        "type": "object",
        "required": ["groups"],
        "additionalProperties": False,
        "properties": {
            "groups": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "rules"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "interval": _DURATION,
                        "rules": {"type": "array", "minItems": 1, "items": _RULE},
                    },
                },
            }
        },
    },
)

CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    (s["properties"]["apiVersion"]["const"], s["properties"]["kind"]["const"]): s
    for s in (KAFKA_NODE_POOL, KAFKA, KAFKA_TOPIC, KAFKA_USER, SERVICE_MONITOR, PROMETHEUS_RULE)
}
