"""The web kit every service's pages are built on: one base layout, language choice, message
catalogues, one local-time format, form reading with CSRF, the staff session, security
headers. Nothing here is built at import: each service makes its `PageKit` in `create_app`."""
