"""Privacy masking of citizen names and phone numbers, and who may see them in full."""
from __future__ import annotations

import re


def mask_name(name: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧阳**, John Smith -> J*** S****; empty stays empty."""
    name = (name or "").strip()
    if not name:
        return ""
    if re.search(r"[\u3400-\u9fff]", name):
        # Two-character compound surnames (欧阳, 司马 ...) keep both characters when the name is long.
        keep = 2 if len(name) >= 4 else 1
        return name[:keep] + "*" * (len(name) - keep)
    return " ".join(part[:1] + "*" * (len(part) - 1) for part in name.split())


def mask_phone(phone: str) -> str:
    """13800000000 -> 138****0000; short numbers keep only their last two digits."""
    phone = (phone or "").strip()
    if not phone:
        return ""
    digits = re.sub(r"\D", "", phone)
    if len(digits) >= 11:
        return digits[:3] + "****" + digits[-4:]
    if len(digits) >= 7:
        return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]
    return "*" * max(len(digits) - 2, 1) + digits[-2:]


def mask_email(address: str) -> str:
    """zhang.san@example.cn -> z*******@example.cn; the domain stays (it says which provider)."""
    address = (address or "").strip()
    local, at, domain = address.rpartition("@")
    if not at:
        return mask_phone(address) if address else ""
    return (local[:1] + "*" * max(len(local) - 1, 1)) + "@" + domain


def mask_address(address: str) -> str:
    """A message address as roles without full contact see it: a phone number or an e-mail address."""
    return mask_email(address) if "@" in (address or "") else mask_phone(address)


def mask_text(text: str, ticket) -> str:
    """Replace the ticket's citizen name and phone where they appear inside free text (public view)."""
    result = text or ""
    if ticket.citizen_phone:
        result = result.replace(ticket.citizen_phone, mask_phone(ticket.citizen_phone))
    if ticket.citizen_name and len(ticket.citizen_name) > 1:
        result = result.replace(ticket.citizen_name, mask_name(ticket.citizen_name))
    return result


def mask_typed(text: str, ticket, people=()) -> str:
    """Text a citizen typed (chat lines, a chat ticket's transcript) as a reader without full contact sees
    it: the ticket's name and phone, each (phone, name) of ``people`` (the chat's own) and any phone number
    or e-mail address inside masked; the ticket's acceptance number stays readable."""
    result = mask_text(text, ticket)
    for phone, name in people:
        for secret, masked in ((phone, mask_phone(phone)), (name, mask_name(name))):
            if secret and len(secret) > 1:
                result = result.replace(secret, masked)
    result = mask_contacts(result)
    return result.replace(mask_phone(ticket.number), ticket.number) if ticket.number else result


def may_see_contact(user, ticket) -> bool:
    """True if ``user`` may see the citizen's full name and phone on ``ticket``.

    The handling department (and units above it, which answer for it) must reach the citizen; centre
    roles that talk to citizens need it too. Everyone else, and the public (``user`` None), gets masks.
    """
    from caseflow.roles import can

    if user is None or not getattr(user, "active", False):
        return False
    if can(user, "citizen.full_contact"):
        return True
    dept = user.department if user.department_id else None
    if dept is None or not can(user, "ticket.handle"):
        return False
    for held in (ticket.department if ticket.department_id else None,
                 ticket.upper_department if ticket.upper_department_id else None):
        if held is not None and held.path.startswith(dept.path):
            return True
    return False


def contact_view(user, ticket) -> dict:
    """The citizen fields as this user may see them."""
    full = may_see_contact(user, ticket)
    if ticket.anonymous and not full:
        return {"name": "匿名", "phone": mask_phone(ticket.citizen_phone), "address": "", "masked": True}
    return {
        "name": ticket.citizen_name if full else mask_name(ticket.citizen_name),
        "phone": ticket.citizen_phone if full else mask_phone(ticket.citizen_phone),
        "address": ticket.citizen_address if full else "",
        "email": ticket.citizen_email if full else "",
        "masked": not full,
    }


def can_see_contact(user, ticket) -> bool:
    """Alias of ``may_see_contact`` (the name the web views use)."""
    return may_see_contact(user, ticket)


_LONG_DIGITS = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){6,}(?![0-9])")  # phones, ID and card numbers
_DATE = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}")
_EMAIL = re.compile(r"[^\s@<>\"'，。；：]+@[^\s@<>\"'，。；：]+\.[A-Za-z]{2,}")


def public_text(text: str, ticket) -> str:
    """Free text as the public website shows it (published cases): the ticket's citizen name, phone, e-mail
    and address replaced, and any phone-like digit run or e-mail address inside the text masked too."""
    result = mask_text(text, ticket)
    for secret in (getattr(ticket, "citizen_address", ""), getattr(ticket, "citizen_email", "")):
        if secret and len(secret.strip()) > 1:
            result = result.replace(secret.strip(), "***")
    # The text may repeat the address without its district and street (a Chinese address runs from the
    # city down to the door): mask the longest tail of it, of 4 characters or more, found in the text.
    address = (getattr(ticket, "citizen_address", "") or "").strip()
    for start in range(max(0, len(address) - 3)):
        if address[start:] in result:
            result = result.replace(address[start:], "***")
            break
    return mask_contacts(result)


def mask_contacts(text: str) -> str:
    """Any e-mail address and phone-like digit run (not a date) inside free text masked."""
    result = _EMAIL.sub("***@***", text or "")
    return _LONG_DIGITS.sub(lambda m: m.group(0) if _DATE.fullmatch(m.group(0)) else mask_phone(m.group(0)),
                            result)
