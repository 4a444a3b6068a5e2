"""The core's reply onion (what the plugin injects to send an invoice_error), opened by the
independent oracle tests/oracle/onion.py as each node on its path would open it."""

from __future__ import annotations

from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from invreq import bolt12
from oracle import onion

secrets = st.integers(min_value=1, max_value=onion.CURVE_ORDER - 1).map(
    lambda n: n.to_bytes(32, "big")
)


@settings(max_examples=25, deadline=None)
@given(
    own=secrets,
    payee=secrets,
    session=secrets,
    path_key_secret=secrets,
    reply_session=secrets,
    path_id=st.binary(min_size=32, max_size=32),
    message=st.text(max_size=300),
)
def test_the_payee_reads_the_invoice_error_we_send_over_its_reply_path(
    own: bytes,
    payee: bytes,
    session: bytes,
    path_key_secret: bytes,
    reply_session: bytes,
    path_id: bytes,
    message: str,
) -> None:
    reply = onion.blinded_path(payee, path_id, reply_session)
    hop = reply["hops"][0]  # type: ignore[index]
    our_id = PrivateKey(own).public_key.format()
    starts_here = our_id == bytes.fromhex(str(reply["first_node_id"]))
    path = bolt12.BlindedPath(
        first_node_id=bytes.fromhex(str(reply["first_node_id"])),
        first_path_key=bytes.fromhex(str(reply["first_path_key"])),
        hops=[
            bolt12.BlindedHop(
                bytes.fromhex(hop["blinded_node_id"]),
                bytes.fromhex(hop["encrypted_recipient_data"]),
            )
        ],
    )
    path_key, packet = bolt12.reply_onion(
        our_id,
        path,
        [(bolt12.ONIONMSG_INVOICE_ERROR, bolt12.invoice_error(message))],
        session_key=session,
        path_key_secret=path_key_secret,
    )
    assert len(packet) == 1 + 33 + 1300 + 32
    if not starts_here:
        # Our node: its own hop sends the message into the payee's path.
        layer = onion.peel(packet, onion.blinded_secret(own, path_key))
        _, data, next_key = onion.decrypt_hop(own, path_key, layer.payload[4])
        assert data == {4: bytes.fromhex(str(reply["first_node_id"])), 8: next_key}
        assert layer.next_packet is not None
        packet, path_key = layer.next_packet, next_key
    secret, data, _ = onion.decrypt_hop(
        payee, path_key, bytes.fromhex(hop["encrypted_recipient_data"])
    )
    assert data[6] == path_id
    last = onion.peel(packet, secret)
    assert last.next_packet is None
    error = dict(bolt12.parse_tlv_stream(last.payload[bolt12.ONIONMSG_INVOICE_ERROR]))
    assert error == {5: message.encode()}
