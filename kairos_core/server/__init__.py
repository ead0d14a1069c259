"""The HTTP side of the gateway: listeners, the request entry point and the response writer."""
