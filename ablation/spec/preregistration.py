"""Pre-registered claims: a run fixes its study's claims when it starts, and a later edit shows as one.

A study's claims are not part of its spec hash (editing a claim must not throw away the trials), so
without more, a claim could be added or reworded after the results are in and the report re-rendered
from the same runs with nothing on the page to show it. Here the run folder's ``run.json`` holds, under
``claims``, the claims as they were when the run started (their fields, a SHA-256 of them, the time,
how many trials had already finished, and why they were registered), and ``claim_registrations`` the
earlier registrations. :func:`compare` sets the registered claims beside the study's current ones: each
current claim is ``registered`` (unchanged), ``changed after the run`` (with the fields that differ) or
``added after the run``; a registered claim gone from the study file is ``removed from the study file``.
The report checks the registered claims as the study's Holm family and shows the others apart.

Registering again is an explicit act (``ablation run ... --register-claims``), recorded with its time
and the trials finished by then, so a page can say that its claims were registered after results existed.
Conventions of pre-registration: Nosek et al. 2018, "The preregistration revolution" (PNAS).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ablation.spec import Claim
from ablation.spec import claims as claim_spec

KEY = "claims"                      # run.json: the registered claims
HISTORY = "claim_registrations"     # run.json: earlier registrations, oldest first
STATUSES = ("registered", "changed after the run", "added after the run", "removed from the study file")
AT_START = "the run started"
ON_REQUEST = "--register-claims"
BEFORE_REGISTRATION = "the run predates registration"


def claims_hash(claims: Iterable[Claim | Mapping[str, Any]]) -> str:
    """SHA-256 (hex) of the canonical JSON of claims' fields, in order."""
    doc = [claim_spec.coerce(c).to_dict() for c in claims]
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def registration(claims: Sequence[Claim], *, finished_trials: int, reason: str) -> dict[str, Any]:
    """The ``run.json`` entry that registers ``claims`` now."""
    return {"registered": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "hash": claims_hash(claims), "finished_trials": int(finished_trials), "reason": reason,
            "claims": [c.to_dict() for c in claims]}


def register(meta: dict[str, Any], claims: Sequence[Claim], *, finished_trials: int, again: bool = False) -> bool:
    """Register ``claims`` in a run's metadata (in place) when it has none, or again when asked.

    A run whose metadata has no registration but finished trials (it predates registration) is
    registered with that said, so the report can show it. Asked ``again`` with the same claims, nothing
    changes. Returns whether a registration was written.
    """
    current = meta.get(KEY)
    if isinstance(current, dict) and not again:
        return False
    if isinstance(current, dict) and current.get("hash") == claims_hash(claims):
        return False
    reason = ON_REQUEST if isinstance(current, dict) else (BEFORE_REGISTRATION if finished_trials else AT_START)
    if isinstance(current, dict):
        meta[HISTORY] = [*(meta.get(HISTORY) or []), current]
    meta[KEY] = registration(claims, finished_trials=finished_trials, reason=reason)
    return True


def registered(meta: Mapping[str, Any] | None) -> tuple[list[Claim], dict[str, Any]] | None:
    """The claims a run registered, and their registration entry (without the claims); None if none."""
    entry = (meta or {}).get(KEY)
    if not isinstance(entry, dict) or not isinstance(entry.get("claims"), list):
        return None
    claims = [Claim.from_dict(c) for c in entry["claims"]]
    return claims, {k: v for k, v in entry.items() if k != "claims"}


@dataclass(frozen=True)
class ClaimStatus:
    """A claim id's standing: the claim to check, its status, and what changed since registration."""

    id: str
    status: str                                   # one of STATUSES
    claim: Claim                                  # the current claim (the registered one if removed)
    registered: Claim | None = None               # the registered version, if any
    changes: tuple[str, ...] = field(default=())  # "field: old -> new" lines for a changed claim

    @property
    def post_hoc(self) -> bool:
        """Whether the claim was written or reworded after the run started (outside the Holm family)."""
        return self.status in ("changed after the run", "added after the run")


def compare(registered_claims: Sequence[Claim], current: Sequence[Claim]) -> list[ClaimStatus]:
    """The current claims in order, each with its standing against the registered set; then the
    registered claims no longer in the study file."""
    old = {c.id: c for c in registered_claims}
    out = []
    for c in current:
        before = old.get(c.id)
        if before is None:
            out.append(ClaimStatus(c.id, "added after the run", c))
        elif before == c:
            out.append(ClaimStatus(c.id, "registered", c, before))
        else:
            out.append(ClaimStatus(c.id, "changed after the run", c, before, tuple(diff(before, c))))
    ids = {c.id for c in current}
    out += [ClaimStatus(c.id, "removed from the study file", c, c) for c in registered_claims if c.id not in ids]
    return out


def diff(before: Claim, after: Claim) -> list[str]:
    """The fields that differ between two versions of a claim, as ``field: old -> new`` lines."""
    a, b = before.to_dict(), after.to_dict()
    return [f"{k}: {_show(a.get(k))} \u2192 {_show(b.get(k))}" for k in a if a.get(k) != b.get(k)]


def _show(value: Any) -> str:
    if value in (None, "", [], {}):
        return "(none)"
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
