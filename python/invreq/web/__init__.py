"""What people see over HTTP: the payee page (:mod:`invreq.web.page`) and the operator
dashboard (:mod:`invreq.web.dashboard`), with their security headers
(:mod:`invreq.web.headers`) and static files (``static/``)."""
