"""The security headers of every page and static file: the one home for them.

- CSP: only this origin's own script, style and event stream (no third-party resource, no
  inline script or style: the page's script is a static file); no plugins, no ``<base>``,
  forms post only here, and no other site may frame the page (clickjacking a "disable"
  button, or overlaying the QR code).
- ``Referrer-Policy: no-referrer``: the page's address holds the request's id, and whoever
  has the page can read the ``lnr`` string on it; a link followed from the page must not
  carry that address to another site.
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options`` for browsers without CSP 2, and
  ``Cache-Control: no-store`` (the state changes; nothing is kept by proxies).
"""

from __future__ import annotations

from collections.abc import MutableMapping

__all__ = ["CSP", "SECURITY_HEADERS", "secure"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def secure(headers: MutableMapping[str, str]) -> None:
    """Add the security headers to a response's headers."""
    headers.update(SECURITY_HEADERS)
