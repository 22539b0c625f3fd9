"""The product's start names the ESL codec's header-block split it runs (issue 15 item 8)."""
from __future__ import annotations

import logging

from switch import codec


def test_start_logs_the_codec_in_use(make_product, caplog):
    """Should log at start whether the ESL header blocks are split by the C accelerator or in pure Python."""
    caplog.set_level(logging.INFO, logger="hotline.product")
    make_product()
    assert f"ESL wire codec: header blocks split by the {codec.implementation()}" in caplog.text
