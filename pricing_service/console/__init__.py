"""The admin console (``/admin``): sessions, page data and HTML rendering.

The controllers live in ``pricing_service.api.admin`` (login, the forms, one handler shape for
every page) and the pages' table in ``pricing_service.api.console_pages``; this package holds what
they use: signed
session cookies and CSRF tokens (``session``), es-CO formatting and the SVG chart (``format``),
the data of each page (``pages``) and the Jinja2 templates and static files.
"""
