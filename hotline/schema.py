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


class NewerSchema(RuntimeError):
    """The database holds migration steps this release does not know: a newer release upgraded it."""


def refuse_newer_schema(done: set[str]) -> None:
    """Raise NewerSchema when ``done`` (the steps recorded in the database) holds a step this release does not
    know. An older release must not run on it: its create_tables would build again every index a newer step
    replaced (inside a transaction, holding the ticket table's writes for minutes at a million tickets, and
    nothing would drop them again), and its code would meet columns and indexes it does not expect."""
    from hotline.migrations import STEPS

    unknown = sorted(done - {step.name for step in STEPS})
    if unknown:
        raise NewerSchema(f"the database was upgraded by a newer release (migration {unknown[-1]}, unknown to "
                          "this one): start that release, not this one (docs/deploy.md, \"Upgrade\")")


def _steps_done() -> set[str]:
    from core.db import database
    from core.migrations import SchemaMigration

    with database.connection_context():
        if not database.table_exists(SchemaMigration._meta.table_name):
            return set()
        return {row.name for row in SchemaMigration.select(SchemaMigration.name)}


def create_schema(models: list | None = None) -> list[str]:
    """Create the missing tables of ``models`` (default: every model) and run the product's pending
    migration steps (``hotline.migrations.STEPS``); returns the names of the steps run. Refuses a database a
    newer release upgraded (NewerSchema)."""
    from core import migrations
    from hotline.migrations import STEPS

    refuse_newer_schema(_steps_done())
    return migrations.create_schema(all_models() if models is None else models, STEPS)


def pending() -> str:
    """'' when every table and migration step of this version is in the database, else what is missing
    first (a web worker waits for it; a standby changes the schema only once active: hotline.product).
    NewerSchema when a newer release upgraded the database."""
    from core.db import database
    from core.migrations import SchemaMigration
    from hotline.migrations import STEPS

    with database.connection_context():
        present = set(database.get_tables())
        missing = [m._meta.table_name for m in all_models() if m._meta.table_name not in present]
        if missing:
            return f"{len(missing)} table(s) missing, e.g. {missing[0]}"
        if SchemaMigration._meta.table_name not in present:
            return "no migration record"
        done = {row.name for row in SchemaMigration.select(SchemaMigration.name)}
        refuse_newer_schema(done)  # not something to wait for: this release must not run on it
        waiting = [step.name for step in STEPS if step.name not in done]
        return f"migration {waiting[0]} not applied" if waiting else ""
