"""The way back to us: the blinded path each request carries, and how invoices on it are known.

BOLT 12 payees (CLN's ``sendinvoice``, LDK's ``request_refund_payment``) send their invoice by
onion message to the request's ``invreq_paths``, or else to ``invreq_payer_id`` as a node id.
Our payer key is not a Lightning node, so with a Core Lightning backend (``--pay-with
cln:PATH``) every request carries one blinded path to that node (BOLT 4 route blinding; the
bytes are the native core's). The node hands invoices arriving on it to invreq through the
``invreq-cln-plugin`` (:mod:`invreq.cln_plugin`).

The final hop's ``path_id`` is HMAC-SHA256(path secret, ``invreq_metadata``): CLN gives the
plugin that value as ``pathsecret``, so invreq recognises its own paths without storing
anything per request, a path cannot be moved to another request (its metadata differs), and
an invoice arriving with a path_id that is not its request's is refused. 32 bytes exactly:
CLN hands shorter ones to the other hook, where its ``offers`` plugin refuses them.

The path secret is kept like ``payer_secret`` (:mod:`invreq.secretfile`): 32 bytes, owner
only, created on first start, and copied to every instance sharing a database (else an
instance refuses invoices on paths another instance made).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from invreq import bolt12, secretfile

__all__ = ["PATH_SECRET_NAME", "PathMaker", "load_or_create_path_secret"]

PATH_SECRET_NAME = "path_secret"


def load_or_create_path_secret(directory: Path) -> bytes:
    return secretfile.load_or_create(
        directory / PATH_SECRET_NAME, role="makes the path_id of every invreq_paths"
    )


@dataclasses.dataclass(frozen=True)
class PathMaker:
    """Builds the ``invreq_paths`` of a request and recognises its ``path_id``.

    ``node_id`` is the paying node (from its ``getinfo``); ``introduction`` an optional
    public peer of it that payees enter through (then the path has two hops), for a node
    that is not announced and so cannot be reached by payees that are not its peers."""

    secret: bytes
    node_id: bytes
    introduction: bytes | None = None

    def path_id(self, metadata: bytes) -> bytes:
        return bolt12.path_id(self.secret, metadata)

    def paths(self, metadata: bytes) -> list[bolt12.BlindedPath]:
        """The ``invreq_paths`` of a request with ``metadata``: one path, blinded from a
        fresh session secret, so two requests' paths cannot be linked."""
        return [
            bolt12.new_blinded_path(
                self.node_id, self.path_id(metadata), introduction=self.introduction
            )
        ]

    def owns(self, metadata: bytes | None, pathsecret: bytes) -> bool:
        """Whether ``pathsecret`` is the path_id of the request with ``metadata`` (constant
        time: it comes from whoever sent the onion message)."""
        return metadata is not None and bolt12.path_id_matches(self.secret, metadata, pathsecret)
