"""Server-rendered pages for residents: the submission form and the tracking page."""

from services.intake.web.pages import pages_router

__all__ = ["pages_router"]
