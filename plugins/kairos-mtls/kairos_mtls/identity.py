"""What a client certificate says about its holder: subject CN, SANs, fingerprint, expiry."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import NameOID

IdentitySource = Literal["subject_cn", "san_dns", "san_email", "san_uri", "san_ip", "subject"]


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """The parts of a (listener-verified) client certificate that authentication uses."""

    subject: str
    """RFC 4514 form, e.g. `CN=alice,O=Example`."""
    values: dict[str, tuple[str, ...]]
    """identity source -> values found, in certificate order."""
    fingerprint: str
    """SHA-256 of the DER certificate, lower-case hex."""
    not_after: float
    """Expiry as epoch seconds."""


def read_certificate(der: bytes) -> CertificateFacts:
    """Parse a DER certificate into the facts above (ValueError if it cannot be parsed)."""
    cert = x509.load_der_x509_certificate(der)
    cns = tuple(
        str(attr.value) for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    subject = cert.subject.rfc4514_string()
    values: dict[str, tuple[str, ...]] = {
        "subject_cn": cns,
        "san_dns": tuple(san.get_values_for_type(x509.DNSName)),
        "san_email": tuple(san.get_values_for_type(x509.RFC822Name)),
        "san_uri": tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
        "san_ip": tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
        "subject": (subject,) if subject else (),
    }
    return CertificateFacts(
        subject=subject,
        values=values,
        fingerprint=hashlib.sha256(der).hexdigest(),
        not_after=cert.not_valid_after_utc.timestamp(),
    )
