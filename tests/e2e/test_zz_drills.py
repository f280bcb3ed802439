"""The fault drills in their short form (CI); `make drills` runs the long form. They run last:
they disturb the stack on purpose."""
from tests.drills import drill_postgres, drill_rabbitmq, drill_redis, drill_redis_restart, drill_replica, table


async def check(outcome):
    print("\n" + table([outcome]))
    assert outcome.ok, outcome.problems


async def test_drill_rabbitmq_unreachable(stack, http):
    await check(await drill_rabbitmq(stack, http, outage=4))


async def test_drill_postgres_restart(stack, http):
    await check(await drill_postgres(stack, http, outage=3))


async def test_drill_redis_unreachable(stack, http):
    await check(await drill_redis(stack, http, outage=2))


async def test_drill_redis_restarted_empty(stack, http):
    await check(await drill_redis_restart(stack, http, probe_s=5))


async def test_drill_ticket_replica_killed(stack, http):
    await check(await drill_replica(stack, http, duration=6))
