"""Operators' view of the service: JSON logs, Prometheus metrics, OpenTelemetry tracing."""
