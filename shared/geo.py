"""A point a resident gave, as people look at it: a link to openstreetmap.org with a marker,
so that no tile server of ours is needed to see it."""

from __future__ import annotations


def map_link(latitude: float | None, longitude: float | None) -> str | None:
    """openstreetmap.org centred on the point, with a marker on it; None without a point."""
    if latitude is None or longitude is None:
        return None
    lat, lon = f"{latitude:.6f}", f"{longitude:.6f}"
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=18/{lat}/{lon}"
