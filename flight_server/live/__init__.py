"""Live subscriptions: DoExchange clients following aggregate updates fed by NATS (issue 4)."""
