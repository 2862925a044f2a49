"""Test harness: real peers started by the suite itself (broker, services, servers)."""
