"""Webhooks: events recorded with the change they report (``outbox``), what each says
(``events``, pure), and their signed delivery by every serving worker (``delivery``)."""
