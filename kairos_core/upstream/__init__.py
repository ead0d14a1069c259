"""Upstream pools, backends and the connection layer that reaches them."""
