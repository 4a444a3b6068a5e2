"""Sending the payee an ``invoice_error`` over its reply path, from the paying node.

A payee's ``sendinvoice`` gives a ``reply_blindedpath`` with its invoice; when invreq refuses
the invoice (the CLN plugin) or its payment certainly failed (the receiver), the payee is told
why at once rather than waiting out its timeout. The message is an onion whose first hop is
our own node, given to lightningd with ``injectonionmessage`` (it is then handled as if a peer
had sent it). Measured on CLN v26.06 (../shared/spec/CLN-NODE-FACTS.md), reply paths start at
the payee itself, which is often not our peer: with ``--path-introduction`` the payee reached
us through another node. So, as CLN's own ``offers`` plugin does before it replies:

1. the reply path's first node is us, or a connected peer: the onion goes straight there;
2. else a route of onion-message nodes to it is looked for in the node's gossip, from the
   first node backwards (``listchannels destination=N``, a bounded number of queries, so a
   mainnet-sized graph is never read whole) until a connected peer of ours is reached; every
   node that forwards must announce ``option_onion_messages`` (feature bit 38/39), in
   ``listpeers`` for our peers and ``listnodes`` for the others, and every channel direction
   used must be active;
3. else ``connect`` to the first node (lightningd finds its address in gossip, if any);
4. else :class:`NoRoute`, whose message is the one log line saying so.

Our part of the route is a blinded path we build and prepend to the payee's (BOLT 4: its last
hop carries ``next_path_key_override``), so the payee's node sees only the node that handed
the message on; our node id is never in the message. The text itself is the payee's to read,
so our node id is also taken out of it (an error such as "pending until node ... reports"
names it), which keeps a node hidden behind a path introduction hidden.

Everything here is blocking and takes ``call(method, params)``, one request on lightningd's
socket: the plugin calls it from a worker thread, the receiver with ``asyncio.to_thread``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from invreq import bolt12

__all__ = [
    "MAX_GOSSIP_QUERIES",
    "NoRoute",
    "find_route",
    "invoice_error_onion",
    "onion_messages_supported",
    "reply_path_from_json",
    "send_invoice_error",
]

#: BOLT 9 ``option_onion_messages``: bits 38 (compulsory) and 39 (optional).
OPTION_ONION_MESSAGES = 38
#: ``listchannels``/``listnodes`` questions one route search may ask: enough for payees a few
#: hops away, bounded so a refusal never walks a mainnet graph.
MAX_GOSSIP_QUERIES = 200
#: What stands for our node id in text sent to the payee.
PAYING_NODE = "the paying node"

Call = Callable[[str, dict[str, Any]], Any]


class NoRoute(Exception):
    """No way to the reply path's first node: a peer, a gossip route, or a connection."""


def onion_messages_supported(features_hex: str | None) -> bool:
    """Whether a BOLT 9 feature vector (hex, big-endian) sets bit 38 or 39."""
    try:
        raw = bytes.fromhex(features_hex or "")
    except ValueError:
        return False
    value = int.from_bytes(raw, "big")
    return bool(value >> OPTION_ONION_MESSAGES & 0b11)


def reply_path_from_json(reply: dict[str, Any]) -> bolt12.BlindedPath:
    """The ``reply_blindedpath`` object of lightningd's onion-message hook, as a path."""
    return bolt12.BlindedPath(
        first_node_id=bytes.fromhex(reply["first_node_id"]),
        first_path_key=bytes.fromhex(reply["first_path_key"]),
        hops=[
            bolt12.BlindedHop(
                bytes.fromhex(h["blinded_node_id"]), bytes.fromhex(h["encrypted_recipient_data"])
            )
            for h in reply["hops"]
        ],
    )


def find_route(call: Call, own: str, target: str) -> list[str]:
    """The nodes strictly between us and ``target`` (hex node ids) over which an onion
    message reaches it: ``[]`` when it is us or a connected peer. Raises NoRoute."""
    if target == own:
        return []
    peers = call("listpeers", {}).get("peers", [])
    connected = {
        p["id"] for p in peers if p.get("connected") and onion_messages_supported(p.get("features"))
    }
    if target in connected:
        return []
    route = _gossip_route(call, own, target, connected)
    if route is not None:
        return route
    try:
        call("connect", {"id": target})
    except Exception as e:
        raise NoRoute(
            f"no route of onion-message nodes to {target} in gossip (from {len(connected)} "
            f"connected peers) and connect failed: {e}"
        ) from None
    return []


def _gossip_route(call: Call, own: str, target: str, connected: set[str]) -> list[str] | None:
    """Breadth first from ``target`` backwards over active channel directions, to the first
    connected peer of ours (or a channel of ours to a connected peer): the shortest route."""
    queries = 0
    toward: dict[str, str | None] = {target: None}  # node -> the next node toward target
    capable: dict[str, bool] = {}

    def forwards(node: str) -> bool:
        nonlocal queries
        if node not in capable:
            queries += 1
            nodes = call("listnodes", {"id": node}).get("nodes", [])
            capable[node] = bool(nodes) and onion_messages_supported(nodes[0].get("features"))
        return capable[node]

    def chain(node: str | None) -> list[str]:
        out = []
        while node is not None and node != target:
            out.append(node)
            node = toward[node]
        return out

    frontier = [target]
    while frontier and queries < MAX_GOSSIP_QUERIES:
        following = []
        for node in frontier:
            if queries >= MAX_GOSSIP_QUERIES:
                break
            queries += 1
            channels = call("listchannels", {"destination": node}).get("channels", [])
            for c in channels:
                source = c.get("source")
                if not isinstance(source, str) or not c.get("active", False):
                    continue
                if source == own:
                    if node in connected:  # our channel to a peer that is up
                        return chain(node)
                    continue
                if source in toward:
                    continue
                if source in connected:
                    toward[source] = node
                    return chain(source)
                if forwards(source):
                    toward[source] = node
                    following.append(source)
        frontier = following
    return None


def invoice_error_onion(
    own: bytes, via: list[bytes], reply: bolt12.BlindedPath, text: str
) -> tuple[bytes, bytes]:
    """(path_key, onion) for ``injectonionmessage``: an invoice_error carrying ``text`` from
    our node through ``via`` into ``reply``. Our hops form a blinded path joined to the
    payee's one (its last hop names the payee's first node and first path key)."""
    first = reply.first_node_id
    if first is None:
        raise NoRoute("the reply path enters at a short channel id, which invreq cannot route")
    if first == own:
        path = reply
    else:
        nodes = [own, *via]
        following = [*via, first]
        plaintexts = [
            bolt12.encode_tlv_stream(
                [(4, nxt)] + ([(8, reply.first_path_key)] if i == len(nodes) - 1 else [])
            )
            for i, nxt in enumerate(following)
        ]
        ours = bolt12.blind_hops(os.urandom(32), list(zip(nodes, plaintexts, strict=True)))
        path = bolt12.BlindedPath(
            first_node_id=own,
            first_path_key=ours[0].path_key,
            hops=[bolt12.BlindedHop(h.blinded_node_id, h.encrypted_recipient_data) for h in ours]
            + list(reply.hops),
        )
    return bolt12.reply_onion(
        own,
        path,
        [(bolt12.ONIONMSG_INVOICE_ERROR, bolt12.invoice_error(text))],
        session_key=os.urandom(32),
        path_key_secret=os.urandom(32),
    )


def send_invoice_error(call: Call, own: str, reply: dict[str, Any], text: str) -> list[str]:
    """Send ``text`` to the payee over ``reply`` (the hook's ``reply_blindedpath``) from our
    node ``own`` (hex); returns the nodes it was handed through (``[]``: straight to the
    path's first node). Raises NoRoute, or what ``call`` raises."""
    path = reply_path_from_json(reply)
    first = path.first_node_id
    if first is None:
        raise NoRoute("the reply path enters at a short channel id, which invreq cannot route")
    via = find_route(call, own, first.hex())
    path_key, onion = invoice_error_onion(
        bytes.fromhex(own), [bytes.fromhex(n) for n in via], path, text.replace(own, PAYING_NODE)
    )
    call("injectonionmessage", {"path_key": path_key.hex(), "message": onion.hex()})
    return via
