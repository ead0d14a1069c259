"""Keeping backends usable: health checks, circuit breakers, retries, traffic splits, mirrors."""
