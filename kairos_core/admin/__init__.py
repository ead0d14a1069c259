"""The admin API: health, readiness and operator endpoints on their own listener."""
