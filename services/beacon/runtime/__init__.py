"""The runtime floor: how Beacon's services run (Faust, Kafka clients, HTTP, metrics, logs,
settings). The contract floor, ``beacon.core``, never imports it."""
