"""Types of the values the keeptrusts API passes around as plain dicts."""

from typing import Any, Dict, List, Literal, Union

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
"authenticated": bool, "org_admin"?: bool}` (`org_admin` only when true: an admin of every team)."""
AdminCommand = Dict[str, Any]
"""An administrative command, the core's `admin::Command`: `{"op": "create_team", "name"}`,
`{"op": "update_team", "team", "name"?, "description"?, "archived"?}`, `{"op": "get_team", "team"}`,
`{"op": "set_member", "team", "email", "role"}`, `{"op": "remove_member", "team", "email"}`,
`{"op": "list_members", "team"}`, `{"op": "add_org_admin" | "remove_org_admin", "email"}`,
`{"op": "create_key", "team", "email", "consumer_group"?, "label"?, "expires_at"?}`,
`{"op": "revoke_key", "id"}`, `{"op": "rotate_key", "id", "expires_at"?}`,
`{"op": "list_keys", "team"?}`, `{"op": "allocate", ...the allocation body}`,
`{"op": "resolve_ticket", "id", "resolution", "charge_to"?}`,
`{"op": "resolve_escalation", "id", "resolution"}`."""
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


class KeyInfo(TypedDict, total=False):
    """A key as shown: never its secret or hash. `status` is `active`, `revoked` or `expired`."""

    id: str
    user: str
    team: str
    consumer_group: str
    label: str
    created_at: int
    expires_at: int
    revoked_at: int
    replaced_by: str
    last_used_at: int
    status: str


class IssuedKey(TypedDict):
    """A new key: its secret (`kt_…`), shown only here, and the key as `Store.keys` shows it."""

    secret: str
    key: KeyInfo


class AuthenticateStatus(TypedDict, total=False):
    """What a secret stands for: `principal`, or `refused` (a stable code) and `message`."""

    principal: Principal
    refused: str
    message: str


class VerifyReport(TypedDict, total=False):
    """What `Store.verify` found: `valid`, `events`, `pruned`, the `head` (`{"seq", "hash"}`) of a
    sound chain, and on a break `problem` and `tamper` (a missing tail, an edit, a gap, an early
    prune)."""

    valid: bool
    events: int
    pruned: int
    head: Dict[str, Any]
    problem: str
    tamper: Union[Dict[str, Any], str]


__all__: List[str] = ["AdminCommand", "AuthenticateStatus", "Decision", "Diagnostic", "Granularity",
                      "IssuedKey", "KeyInfo", "MarkerFormat", "Principal", "Record", "Resolution", "Role",
                      "Section", "Usage", "VerifyReport"]
