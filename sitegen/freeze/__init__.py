"""Freezing the site into static files: planning, rendering in workers, the incremental state, the commit."""

from .build import FreezeResult, freeze_site

__all__ = ["FreezeResult", "freeze_site"]
