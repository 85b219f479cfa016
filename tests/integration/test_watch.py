"""The sweeper's watch on payouts open too long, against PostgreSQL: counted, emitted as the alarm's metric."""

from __future__ import annotations

from chalicelib import wiring
from chalicelib.observability import metric_fields
from chalicelib.services import watch
from tests.integration.helpers import batch, item, post


def test_only_open_payouts_older_than_the_setting_are_counted_and_emitted(client, db):
    old, new = batch(item(), item(), item()), batch(item())
    old_ids = post(client, old).json_body["payout_ids"]
    post(client, new)
    with db.cursor() as cur:
        cur.execute(
            "UPDATE payouts SET created_at = now() - interval '2 hours' WHERE payout_id = ANY(%s::uuid[])", (old_ids,)
        )
        cur.execute("UPDATE payouts SET status = 'Completed' WHERE payout_id = %s", (old_ids[0],))
    metric_fields()  # what the POSTs counted
    found = watch.open_too_long(wiring.open_payouts(), 3600)
    assert found >= 2  # other tests' payouts may be open and old too; these two certainly are
    assert wiring.open_payouts().older_than(3600) == found
    assert wiring.open_payouts().older_than(3 * 3600) == found - 2
    emitted = metric_fields()  # the EMF fields of the sweeper's log line
    assert emitted["PayoutsOpenTooLong"] == [float(found)]
