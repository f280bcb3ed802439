"""Typed application keys of tenant-service."""
from __future__ import annotations

from aiohttp import web

from .organizations.service import OrganizationService

ORGANIZATIONS = web.AppKey("organizations", OrganizationService)
