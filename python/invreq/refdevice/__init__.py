"""A reference signing device that speaks the Jade CBOR-RPC protocol over TCP.

Unmodified hwilib connects to it as to a Jade simulator (``tcp:127.0.0.1:30121``), so the
HWI signer path can be exercised end to end without hardware. Besides the stock calls it
answers the ``sign_bolt12`` extension: it receives the whole unsigned invoice_request TLV
stream, recomputes what it signs, shows it, applies a policy and signs BIP-340.

Run it with ``python -m invreq.refdevice`` (or the ``invreq-refdevice`` script).

It stands for a device made by someone else, so it checks the product rather than agreeing
with it by construction: the BOLT 12 record numbers it reads (``summary.py``) are declared
here again, not imported, and it reads each field it shows from the records itself. A wrong
number or reading on either side then shows up as a disagreement in the tests (the device
shows or refuses what the product did not mean) instead of being shared. Only the byte kit
of the native core is reused (TLV framing, the merkle root and tagged hash BOLT 12 signs,
and the signed-message digest of :mod:`invreq.approval`), which the spec's vectors test on
their own. The product never imports this package (the import contract in pyproject.toml).
"""
