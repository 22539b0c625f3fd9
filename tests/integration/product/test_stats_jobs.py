"""The product runs the statistics jobs: the hotspot scan and the dispatch suggestions' retraining are on its
scheduler, and a scan over the demo tickets raises no warning (both databases, fake FreeSWITCH)."""
from __future__ import annotations

from core.db import database
from stats.models import HotspotWarning, TicketTopic


def test_product_schedules_hotspots_and_retraining(make_product):
    """Should schedule the scan every few minutes and the nightly retraining (a first one soon, no model yet),
    and index the demo tickets quietly."""
    product = make_product()
    scheduler = product.parts["scheduler"]
    assert scheduler.get_job("stats-hotspots") is not None
    assert scheduler.get_job("stats-suggestions-retrain") is not None
    assert scheduler.get_job("stats-suggestions-first") is not None
    with database.connection_context():
        result = product.parts["hotspots"].run()
        assert result.raised == [] and HotspotWarning.select().count() == 0
        assert TicketTopic.select().count() > 0
