"""The other half of an invoice_request: receiving the invoice that answers it, and paying.

Whoever reads our ``lnr`` string answers with a BOLT 12 invoice (``lni``). ``receiveinvoice``
accepts it only when every check passes (REFERENCE §8), each refusal with its own code:

- the invoice decodes, its signature verifies against invoice_node_id, its fields are
  complete (the native core: ``bolt12.decode_invoice``);
- the invreq_id recomputed from its records names a request we issued (that also proves
  the invoice copies our request exactly) and the request is active;
- ``invoice_amount == invreq_amount`` (BOLT 12's rule, checked by the core's reader, so a
  different amount is an invalid ``invoice``; CLN pays smaller amounts, we do not);
- neither the invoice (created_at + relative_expiry, default 7200 s) nor the request
  (``absolute_expiry``; CLN never checks it) has expired.

Then the request is **claimed** in the store (one conditional insert: of two invoices for a
single-use request exactly one proceeds), paid through the backend chosen at start-up, and
the outcome is recorded: ``paid`` marks the request used (single-use: inactive), ``failed``
releases the claim. Every attempt is kept and listed by ``listpayments``.

Payment state that cannot lie:

- **One payment per invoice, ever.** The store keeps one row per payment_hash (a unique
  index); a replayed invoice gets its payment's answer, never a second ``xpay``.
- **Unknown stays pending.** ``xpay`` is bounded (``--pay-timeout``, also given to the node
  as ``retry_for``); when it does not answer in time, or the connection is lost, or the
  process dies, the payment stays ``pending`` with its claim held. Only the node that
  attempted it (its ``getinfo`` id is recorded with the payment) settles it, from its own
  record (``listpays`` by payment_hash): at start and every ``--pay-reconcile-interval``
  seconds, for every pending payment except those whose ``xpay`` this process is still
  waiting for. ``complete`` settles it paid at once; ``failed``, or no record at all, only
  once the node's attempt is certainly over (see ``Reconciler._settle``). An instance with no
  node, or with another node, leaves it pending and logs why; ``resolvepayment`` settles it
  by hand, with evidence.
- **Bounded attempts** per request and per minute, counted in the database
  (``PaymentLimits``), so a failing node is not asked once per submission.

Invoices also arrive from the CLN plugin (``receiveinvoice invoice pathsecret``): the
invoice came over the blinded path of a request (:mod:`invreq.blindpaths`), ``pathsecret``
must be that request's path_id (else 2114), and the reply leaves as soon as the claim is
taken, the payment continuing in the background (:meth:`Receiver.receiveinvoice`).

The package's rooms: :mod:`~invreq.payments.node` (the node that pays: ``PaymentBackend``,
``ClnBackend``, ``NoBackend``, ``open_backend``), :mod:`~invreq.payments.receive` (the
``Receiver``: checks, the claim, paying, ``listpayments``) and
:mod:`~invreq.payments.reconcile` (the ``Reconciler``: settling pending payments from the
node's record, and ``resolvepayment``).
"""

from invreq.payments.node import (
    ClnBackend,
    NoBackend,
    NodePaymentFailed,
    NodeRecord,
    OutcomeUnknown,
    Paid,
    PaymentBackend,
    open_backend,
)
from invreq.payments.receive import Receiver
from invreq.payments.reconcile import Reconciler

__all__ = [
    "ClnBackend",
    "NoBackend",
    "NodePaymentFailed",
    "NodeRecord",
    "OutcomeUnknown",
    "Paid",
    "PaymentBackend",
    "Receiver",
    "Reconciler",
    "open_backend",
]
