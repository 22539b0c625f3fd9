"""Material by fax (caseflow.materials.send_by_fax) under the dial-out policy: a caller's international fax
number is refused with the reason, nothing is queued and the refusal is in DialOutLog; both databases."""
from __future__ import annotations

import pytest

from recorder.models import DialOutLog
from caseflow import attachments, knowledge, materials
from caseflow.services import TicketInputError
from caseflow.models import MaterialRequest
from recorder.fax import FaxService, FaxSettings
from recorder.models import FaxJob

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")


@pytest.fixture
def guide(org_setup, tmp_path, clock):
    """A knowledge answer carrying a PDF, written by the centre."""
    item = knowledge.create_item("办事指南", "市民服务中心办事指南全文", publisher=org_setup.centre_user, clock=clock)
    stored = attachments.store_file(tmp_path / "attachments", PDF, "办事指南.pdf", clock)
    return knowledge.add_answer(item, "见附件", actor=org_setup.centre_user, attachment=stored, clock=clock)


def test_material_fax_to_an_international_number_is_refused_and_logged(org_setup, guide, tmp_path, clock):
    """Should refuse to fax material to the caller's international number under the shipped policy with the
    reason, queue no job and write no fax file, leave the request pending and log the refusal on the centre
    user's behalf; the same answer to a domestic number is queued (the refusal is the policy's)."""
    fax = FaxService(tmp_path / "fax", tmp_path / "attachments", FaxSettings(), clock=clock)
    abroad = MaterialRequest.create(caller="13800138001", topic="办事指南", channel="fax", address="+44 20 7946 0000")
    home = MaterialRequest.create(caller="13800138002", topic="办事指南", channel="fax", address="0571-88888888")
    actor = org_setup.centre_user

    with pytest.raises(TicketInputError, match="传真未能发送.*不允许拨打国际号码 00442079460000"):
        materials.send_by_fax(abroad.id, guide.id, actor, fax, tmp_path / "attachments", clock)
    assert FaxJob.select().count() == 0 and not any((tmp_path / "fax").rglob("*"))
    assert MaterialRequest.get_by_id(abroad.id).status == "pending"
    [row] = DialOutLog.select()
    assert (row.actor, row.user_id, row.purpose, row.number, row.number_class, row.allowed) == (
        f"user:{actor.id}", actor.id, "material_fax", "00442079460000", "international", False)
    assert "international numbers may not be dialled (material_fax)" in row.reason

    job = materials.send_by_fax(home.id, guide.id, actor, fax, tmp_path / "attachments", clock)
    assert (job.number, job.state, job.purpose) == ("057188888888", "queued", "material_fax")
    assert MaterialRequest.get_by_id(home.id).status == "sent"
    assert DialOutLog.select().where(DialOutLog.allowed == False).count() == 1  # noqa: E712 - peewee expression
