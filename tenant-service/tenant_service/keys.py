"""Typed application keys of tenant-service."""
from __future__ import annotations

from aiohttp import web

from shared.messaging.consumer import EventConsumer

from .audit_events.service import AuditEventService
from .invitations.service import InvitationService
from .members.service import MemberService
from .organizations.service import OrganizationService
from .roles.service import RoleService

ORGANIZATIONS = web.AppKey("organizations", OrganizationService)
MEMBERS = web.AppKey("members", MemberService)
INVITATIONS = web.AppKey("invitations", InvitationService)
ROLES = web.AppKey("roles", RoleService)
AUDIT_EVENTS = web.AppKey("audit_events", AuditEventService)
USERS_CONSUMER = web.AppKey("users_consumer", EventConsumer)
