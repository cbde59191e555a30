"""Integration tests over a real RabbitMQ."""
