"""Every replica's read view of every alert: the escalations table's changelog, read in
full by each notifier (Kafka Streams would call it a GlobalKTable over the changelog).

Why: the SMS-reply webhook, the acknowledgement link pages and ``/v1/alerts/{id}`` reach
whichever replica the load balancer picks, but the ``escalations`` table is partitioned by
alert: only one replica owns an alert's state. An SMS reply names a person and a reply code
and a link names a notification tag, neither of which says which partition holds the alert,
so routing to the owner would need a scatter-gather to every replica on every request. This
view is fed by the changelog every owner writes (``agents.feed_directory``), so every replica
answers every request from the same state, and a former owner after a takeover reads the
new owner's writes like everyone else: it never answers from what it held before.

Guarantees (docs/ARCHITECTURE.md, "Notifier replicas"):
- every replica answers every read from the state the owner last wrote to the changelog,
  behind it only by the changelog's propagation (the owner's flush, then one fetch:
  ``BEACON_KAFKA_FETCH_MAX_WAIT_MS``); ``tests/integration/test_two_of_every_service.py`` checks
  that both replicas answer each acknowledged alert's new state, owner or not. A request it
  cannot yet answer (its view still loading after a start) gets 503, never "unknown";
- reads never decide anything on their own: acknowledgements are commands on
  ``beacon.acks`` that the owner applies to its authoritative state (a second use of a link,
  or an ack of an alert resolved meanwhile, is a no-op there);
- lookups cost O(matches among the alerts not yet resolved): by alert id, by link tag, by
  (person, reply code or a bundle's ack-all code), where a resolved alert is found only as
  the last one resolved for that reply. Expired states leave the view with their tombstones.

Pure data structure here; the Kafka consumer feeding it lives in ``agents``."""

from __future__ import annotations

from beacon.notifier.escalation import EscalationState, Notice
from beacon.notifier.links import link_tag

Ref = tuple[str, str]


class AlertDirectory:
    def __init__(self) -> None:
        self._raw: dict[str, bytes] = {}
        self._tags: dict[str, tuple[str, ...]] = {}  # alert id -> its link tags
        self._replies: dict[str, tuple[tuple[str, str], ...]] = {}  # alert id -> its (person, code)s
        self.by_tag: dict[str, Ref] = {}
        self.by_reply: dict[tuple[str, str], set[str]] = {}  # alerts not yet resolved
        self.resolved_reply: dict[tuple[str, str], str] = {}  # the last resolved alert per reply
        self.loaded = False  # the changelog was read up to its end as of the start

    def __len__(self) -> int:
        return len(self._raw)

    def apply(self, alert_id: str, value: bytes | None) -> None:
        """One changelog record: the alert's new state, or a tombstone (``None``)."""
        self._unindex(alert_id)
        if value is None:
            self._raw.pop(alert_id, None)
            return
        state = EscalationState.model_validate_json(value)
        self._raw[alert_id] = value
        self._index(state)

    def put(self, state: EscalationState) -> None:
        self.apply(state.alert_id, state.to_json())

    def _index(self, state: EscalationState) -> None:
        tags = tuple(link_tag(state.alert_id, key) for key in state.notices)
        for tag, key in zip(tags, state.notices, strict=True):
            self.by_tag[tag] = (state.alert_id, key)
        codes = (state.reply_code, *state.bundles)
        replies = tuple((person, code) for person in state.paged_people() for code in codes)
        for reply in replies:
            if state.status == "resolved":
                self.resolved_reply[reply] = state.alert_id
            else:
                self.by_reply.setdefault(reply, set()).add(state.alert_id)
        self._tags[state.alert_id], self._replies[state.alert_id] = tags, replies

    def _unindex(self, alert_id: str) -> None:
        for tag in self._tags.pop(alert_id, ()):
            if self.by_tag.get(tag, ("", ""))[0] == alert_id:
                del self.by_tag[tag]
        for reply in self._replies.pop(alert_id, ()):
            if self.resolved_reply.get(reply) == alert_id:
                del self.resolved_reply[reply]
            ids = self.by_reply.get(reply)
            if ids is not None:
                ids.discard(alert_id)
                if not ids:
                    del self.by_reply[reply]

    # ---------------------------------------------------------------- lookups
    def state(self, alert_id: str) -> EscalationState | None:
        raw = self._raw.get(alert_id)
        return EscalationState.model_validate_json(raw) if raw is not None else None

    def find_link(self, tag: str) -> tuple[EscalationState, Notice] | None:
        """The notification whose acknowledgement link carries ``tag``, with its alert."""
        ref = self.by_tag.get(tag)
        state = self.state(ref[0]) if ref else None
        notice = state.notices.get(ref[1]) if state and ref else None
        return (state, notice) if state is not None and notice is not None else None

    def reply_candidates(self, person: str, code: str) -> list[EscalationState]:
        """The alerts sent to ``person`` whose reply code, or whose bundle's ack-all code,
        is ``code`` (what ``escalation.sms_reply`` decides among): those not yet resolved, or
        else the last one resolved (so the answer can say so). O(alerts not yet resolved)."""
        ids = sorted(self.by_reply.get((person, code), ()))
        if not ids and (person, code) in self.resolved_reply:
            ids = [self.resolved_reply[(person, code)]]
        states = (self.state(alert_id) for alert_id in ids)
        return [s for s in states if s is not None]
