"""The member workspace: server-rendered pages for members and leaders, on a phone, without
JavaScript, Vietnamese first."""

from services.routing.web.pages import workspace_router

__all__ = ["workspace_router"]
