"""The dashboard: server-rendered pages at ``/`` whose small ES modules (``collector/web/static``)
fetch the ``/api/v1`` reports and draw them, charts included, as inline SVG.

``pages`` lists the pages and who may open them, ``html`` renders them, ``routes`` serves
them with a strict Content-Security-Policy and the login, account and static-file routes.
"""
