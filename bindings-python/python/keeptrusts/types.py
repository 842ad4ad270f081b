"""Types of the values the keeptrusts API passes around as plain dicts."""

from typing import Any, Dict, List, Literal

try:
    from typing import TypedDict
except ImportError:  # pragma: no cover - Python < 3.8
    from typing_extensions import TypedDict

Decision = Dict[str, Any]
"""An evaluation's answer: verdict, status, error, chain, results, the rewritten request or
response, escalation_id, ticket_id, reservation, estimate, audit."""
Diagnostic = Dict[str, Any]
"""A pack diagnostic: code, severity, message, path, line, column, suggestion."""
Principal = Dict[str, Any]
"""`{"org"?, "user"?, "team"?, "role"?: "owner" | "admin" | "member", "consumer_group"?,
"authenticated": bool}`."""
Record = Dict[str, Any]
"""A stored record: team, member, key, wallet, ticket, escalation, event, dashboard view."""

Role = Literal["owner", "admin", "member"]
Section = Literal["overview", "events", "spend", "escalations", "usage"]
Resolution = Literal["approve", "deny"]
MarkerFormat = Literal["label", "mask", "hash", "partial"]
Granularity = Literal["day", "week", "month"]


class Usage(TypedDict):
    """Token usage a provider reported."""

    prompt_tokens: int
    completion_tokens: int


class VerifyReport(TypedDict, total=False):
    """What `Store.verify` found: `valid`, `events`, and on a break `problem` and `tamper`."""

    valid: bool
    events: int
    problem: str
    tamper: Dict[str, Any]


__all__: List[str] = ["Decision", "Diagnostic", "Granularity", "MarkerFormat", "Principal", "Record",
                      "Resolution", "Role", "Section", "Usage", "VerifyReport"]
