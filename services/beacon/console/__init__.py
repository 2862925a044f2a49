"""The on-call web console: who is missing now, the open alerts, each child's timeline,
and acknowledgement from the browser. Read-only over Kafka except for the AckCommands
it produces; every page is rendered on the server and pushed live (Server-Sent Events)."""
