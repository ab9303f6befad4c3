"""The contract's quick start through a client generated from openapi/openapi.json with
openapi-python-client: `python quickstart.py http://127.0.0.1:PORT` (the generated package
`wagate_client` next to this file)."""

import base64
import sys
import time
from io import BytesIO

from wagate_client import AuthenticatedClient, Client
from wagate_client.api.auth import login, register
from wagate_client.api.contacts import create_contact, list_contacts
from wagate_client.api.messages import get_message, send_image_message, send_text_message
from wagate_client.api.sandbox import sandbox_scan_qr
from wagate_client.api.sessions import connect_session, create_session, get_session_status
from wagate_client.api.whatsapp_contacts import create_vendor_contact, list_vendor_contacts
from wagate_client.models import (
    ContactSort,
    CreateContactInput,
    CreateSessionInput,
    LoginInput,
    RegisterInput,
    SandboxScanInput,
    SendMediaForm,
    SendTextInput,
    SortOrder,
    VendorCreateInput,
)
from wagate_client.types import File

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def check(what, response, status):
    if response.status_code != status or response.parsed is None:
        raise SystemExit(f"{what}: HTTP {response.status_code} {response.content!r}")
    print(f"ok  {what} ({response.status_code})")
    return response.parsed


def main(base_url):
    anon = Client(base_url=base_url)
    email = f"py-{time.time_ns()}@quickstart.test"
    check("register", register.sync_detailed(client=anon, body=RegisterInput(
        email=email, password="correct-horse-battery", name="Python Client", company="Acme")), 201)
    auth = check("login", login.sync_detailed(client=anon, body=LoginInput(
        email=email, password="correct-horse-battery")), 200)
    api = AuthenticatedClient(base_url=base_url, token=auth.data.access_token)

    session = check("createSession", create_session.sync_detailed(
        client=api, body=CreateSessionInput(name="Sales line")), 201).data
    connected = check("connectSession", connect_session.sync_detailed(session.id, client=api), 200)
    assert connected.data.status.value == "qr_pending", connected.data.status
    check("sandboxScanQr", sandbox_scan_qr.sync_detailed(
        session.id, client=api, body=SandboxScanInput(phone_number="+14155550100")), 200)
    for _ in range(100):
        status = check("getSessionStatus", get_session_status.sync_detailed(session.id, client=api), 200)
        if status.data.connected:
            break
        time.sleep(0.05)
    else:
        raise SystemExit("session never connected")

    sent = check("sendTextMessage", send_text_message.sync_detailed(client=api, body=SendTextInput(
        session_id=str(session.id), to="+919876543210", text="Hello from a generated client")), 200)
    message = check("getMessage", get_message.sync_detailed(sent.data.id, client=api), 200)
    print(f"    message {message.data.id} is {message.data.status.value}")
    form = SendMediaForm(file=File(payload=BytesIO(PNG), file_name="pixel.png", mime_type="image/png"),
                         session_id=session.id, to="+919876543210", caption="A pixel")
    check("sendImageMessage", send_image_message.sync_detailed(client=api, body=form), 200)

    check("createContact", create_contact.sync_detailed(client=api, body=CreateContactInput(
        phone="+14155550123", name="Ada Lovelace", tags=["vip"])), 201)
    first = check("listContacts", list_contacts.sync_detailed(client=api, page=1, limit=20, search="ada"), 200)
    assert len(first.data) == 1, first.data
    check("createVendorContact", create_vendor_contact.sync_detailed(client=api, body=VendorCreateInput(
        user_number="+971501234567", user_name="Ahmed Hassan")), 201)
    vendor = check("listVendorContacts", list_vendor_contacts.sync_detailed(
        client=api, limit=10, sort_by=ContactSort.NAME, sort_order=SortOrder.ASC), 200)
    assert vendor.data.total == 2, vendor.data.total
    print("quick start passed (Python)")


if __name__ == "__main__":
    main(sys.argv[1])
