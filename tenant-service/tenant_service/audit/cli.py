"""Commands of the audit log (as the service's own database role, from AUDIT_DATABASE_URL):

    python -m tenant_service.audit verify [--organization ID] [--json]
    python -m tenant_service.audit retention --organization ID --days N   (0: back to the default)
    python -m tenant_service.audit purge [--organization ID]              (one retention pass now)

``verify`` exits 1 when a chain is broken and names its first broken event.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from uuid import UUID

from shared.db import create_pool

from .config import AuditSettings
from .service import apply_retention, chained_organizations, set_retention, verify_chain

COMMANDS = ("verify", "retention", "purge")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tenant_service.audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="verify organizations' hash chains")
    verify.add_argument("--organization", type=UUID, help="only this organization (default: all)")
    verify.add_argument("--json", action="store_true", help="one JSON object a line")
    retention = sub.add_parser("retention", help="set an organization's retention in days")
    retention.add_argument("--organization", type=UUID, required=True)
    retention.add_argument("--days", type=int, required=True)
    purge = sub.add_parser("purge", help="apply retention now")
    purge.add_argument("--organization", type=UUID, help="only this organization (default: all)")
    return parser


async def _run(settings: AuditSettings, args: argparse.Namespace) -> int:
    pool = await create_pool(settings)
    try:
        if args.command == "verify":
            orgs = [args.organization] if args.organization else await chained_organizations(pool)
            broken = 0
            for org_id in orgs:
                result = await verify_chain(pool, org_id)
                broken += result.first_broken_id is not None
                if args.json:
                    print(json.dumps({"organization_id": str(org_id), **result.as_json()}))
                elif result.first_broken_id is None:
                    print(f"{org_id}: ok, {result.checked} events checked")
                else:
                    print(f"{org_id}: BROKEN at event {result.first_broken_id} "
                          f"({result.checked} events checked)")
            return 1 if broken else 0
        if args.command == "retention":
            if args.days < 0:
                print("--days must be 0 or more", file=sys.stderr)
                return 2
            await set_retention(pool, args.organization, args.days or None)
            return 0
        orgs = [args.organization] if args.organization else await chained_organizations(pool)
        for org_id in orgs:
            removed = await apply_retention(pool, org_id, default_days=settings.retention_days)
            print(f"{org_id}: {removed} events removed")
        return 0
    finally:
        await pool.close()


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return asyncio.run(_run(AuditSettings(), args))
