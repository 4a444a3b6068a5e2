"""A reference signing device that speaks the Jade CBOR-RPC protocol over TCP.

Unmodified hwilib connects to it as to a Jade simulator (``tcp:127.0.0.1:30121``), so the
HWI signer path can be exercised end to end without hardware. Besides the stock calls it
answers the ``sign_bolt12`` extension: it receives the whole unsigned invoice_request TLV
stream, recomputes what it signs, shows it, applies a policy and signs BIP-340.

Run it with ``python -m invreq.refdevice`` (or the ``invreq-refdevice`` script).
"""
