"""What the gateway tells operators: metrics per route, access logs, trace context, log format."""
