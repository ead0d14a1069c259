"""Why a session stops early."""


class BackendLost(Exception):
    """The backend's control connection failed or stopped answering."""


class SessionOver(Exception):
    """The session must end after the reply already sent (QUIT, too many failed logins)."""
