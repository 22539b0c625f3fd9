"""The one list of every table the product has, in creation order (explicit wiring, no registry), and the
schema made from it with the product's migration steps (``create_schema``)."""
from __future__ import annotations


def all_models() -> list:
    """Every model of every package; each package owns a MODELS list."""
    from acd.models import MODELS as acd_models
    from caseflow.models import MODELS as caseflow_models
    from webui.models import MODELS as webui_models
    from recorder.models import MODELS as recorder_models
    from ivr.models import MODELS as ivr_models
    from channels.models import MODELS as channels_models
    from stats.models import MODELS as stats_models
    from ops.models import MODELS as ops_models

    models = list(caseflow_models)
    models += webui_models
    models += recorder_models
    models += acd_models
    models += ivr_models
    models += channels_models
    models += stats_models
    models += ops_models
    # Packages add their MODELS here as they gain tables.
    return models


def create_schema(models: list | None = None) -> list[str]:
    """Create the missing tables of ``models`` (default: every model) and run the product's pending
    migration steps (``hotline.migrations.STEPS``); returns the names of the steps run."""
    from core import migrations
    from hotline.migrations import STEPS

    return migrations.create_schema(all_models() if models is None else models, STEPS)
