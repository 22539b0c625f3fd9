"""What the tests of the ACD administration pages (/admin/acd: test_admin_acd, test_admin_chat_queues) share:
the people who use them, their password, the audit rows, and the check that nobody else gets in."""
from __future__ import annotations

import pytest

from caseflow.accounts import create_user
from webui.models import AuditLog

PASSWORD = "admin-pass-123"


@pytest.fixture
def people(db):
    """An administrator, a team lead, an agent user and a leader (for guest duty)."""
    return {
        "admin": create_user("0001", "管理员", PASSWORD, roles="admin"),
        "lead": create_user("8001", "赵班长", PASSWORD, roles="team_lead,agent", extension="1008"),
        "agent": create_user("1001", "王晓燕", PASSWORD, roles="agent", extension="1000"),
        "leader": create_user("5001", "吴市长", PASSWORD, roles="leader"),
    }


def audits(action: str) -> list[AuditLog]:
    return list(AuditLog.select().where(AuditLog.action == action).order_by(AuditLog.id))


def assert_only_staff_get_in(client, pages: list[str], posts: list[tuple[str, dict]]) -> None:
    """Anonymous users are sent to the login page from every page; the agent (1001) and the leader (5001) of
    ``people`` are refused (403) every page and every (url, form) post."""
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), url
    for operator_no in ("1001", "5001"):
        client.login(operator_no, PASSWORD)
        for url in pages:
            assert client.get(url).status_code == 403, (operator_no, url)
        for url, form in posts:
            assert client.post_form(url, form).status_code == 403, (operator_no, url)
        client.logout()
