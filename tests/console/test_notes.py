"""Notes on an alert are personal data: on the topic only encrypted with the console's notes
key, shown in clear only on the Alert page to a signed-in user; off without a key."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from beacon.console.notes import NotesCipher
from beacon.console.settings import ConsoleSettings
from beacon.core.notes import NoteRecord
from beacon.core.topics import ALERTS, CONSOLE_NOTES, EVENTS
from console.support import csrf_of, logged_in_client, raised_alert, reported_event
from harness.kafka import produce, produce_events, read_topic
from harness.services import ServiceProcess

SECRET = "Carer says she is with an older man near the station"


def test_a_note_is_sealed_and_only_its_key_opens_it():
    key = Fernet.generate_key().decode()
    record = NotesCipher(key).seal(alert_id="A1", child_ref="CH-1", by="duty-1", at=datetime.now(UTC), text=SECRET)
    assert SECRET not in record.to_json().decode() and "station" not in record.to_json().decode()
    assert NotesCipher(key).open(NoteRecord.from_json(record.to_json())).text == SECRET
    assert NotesCipher(Fernet.generate_key().decode()).open(record).text is None


def test_a_notes_key_that_is_not_a_fernet_key_stops_the_console():
    with pytest.raises(ValidationError, match="Fernet key"):
        ConsoleSettings(console_session_secret="s" * 40, console_notes_key="not a key but long enough to pass 32")


@pytest.mark.slow
def test_a_note_written_on_the_alert_page_is_on_the_topic_only_encrypted(settings, console_env, tmp_path):
    child, episode = "CH-NOTE-001", "MET-2026-NOTE1"
    alert = raised_alert(child, episode)
    produce_events(settings, EVENTS, [reported_event(child, episode)])
    produce(settings, ALERTS, [(alert.key, alert.to_json())])
    env = {**console_env, "BEACON_CONSOLE_NOTES_KEY": Fernet.generate_key().decode()}
    with ServiceProcess("console", env, tmp_path / "console.log", port=settings.console_port):
        client = logged_in_client(settings)
        page = client.get(f"/alerts/{alert.alert_id}").text
        assert "No notes yet." in page
        saved = client.post(f"/alerts/{alert.alert_id}/notes", data={"csrf": csrf_of(page), "text": SECRET})
        assert saved.status_code == 303
        forged = client.post(f"/alerts/{alert.alert_id}/notes", data={"csrf": "forged", "text": "x"})
        assert forged.status_code == 403
        deadline = time.monotonic() + 30
        while SECRET not in (page := client.get(f"/alerts/{alert.alert_id}").text) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert SECRET in page
        assert "Note added by duty-manager-1" in client.get(f"/children/{child}").text
        assert SECRET not in client.get(f"/children/{child}").text  # the timeline says only who
    records = read_topic(settings, CONSOLE_NOTES, expect=1)
    assert len(records) == 1
    assert SECRET.encode() not in records[0].value and b"station" not in records[0].value
    assert SECRET.encode() not in (tmp_path / "console.log").read_bytes()

    # Without a key notes are off: shown as such, and the form's route answers 404.
    with ServiceProcess("console", console_env, tmp_path / "console-2.log", port=settings.console_port):
        client = logged_in_client(settings)
        page = client.get(f"/alerts/{alert.alert_id}").text
        assert "cannot be read with this console" in page and SECRET not in page
        refused = client.post(f"/alerts/{alert.alert_id}/notes", data={"csrf": csrf_of(page), "text": "x"})
        assert refused.status_code == 404
