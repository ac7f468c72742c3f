"""Faults injected for real: SIGKILLed workers and servers, nats-server and PostgreSQL restarts."""
