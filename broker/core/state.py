"""What the daemon knows about each sign-in group, and how that is remembered across restarts."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field

from broker.core.model import NO_CONTEXT, Profile, RequestContext, Token

# Profile fields worth remembering; all of them are non-secret.
_PROFILE_FIELDS = tuple(f.name for f in dataclasses.fields(Profile))



class ProfileStatus(enum.StrEnum):
    """What `kubetray status` and the tray show for a profile; the values are part of the protocol."""

    OK = "ok"
    SIGN_IN_REQUIRED = "sign_in_required"
    SIGNING_IN = "signing_in"
    ERROR = "error"
    UNKNOWN = "unknown"


STATE_OK = ProfileStatus.OK
STATE_SIGN_IN_REQUIRED = ProfileStatus.SIGN_IN_REQUIRED
STATE_SIGNING_IN = ProfileStatus.SIGNING_IN
STATE_ERROR = ProfileStatus.ERROR
STATE_UNKNOWN = ProfileStatus.UNKNOWN


@dataclass
class ProfileState:
    """Mutable state of one sign-in group; guarded by the service's lock."""

    profile: Profile
    token: Token | None = field(default=None, repr=False)
    account: str = ""
    home_account_id: str = ""
    refresh_at: float = 0.0
    last_refresh: float = 0.0
    last_used: float = 0.0
    failures: int = 0
    retry_at: float = 0.0
    needs_sign_in: bool = False
    auto_sign_in_blocked: bool = False
    warmed: bool = False  # a silent acquisition was tried since the daemon started
    last_error: str = ""
    last_error_code: str = ""
    # The latest caller's context (environment, secrets), for the refreshes nobody waits for. Memory
    # only; logout empties it.
    context: RequestContext = field(default=NO_CONTEXT, repr=False)
    # Bumped by logout: a flight that started before it finds its generation stale and keeps nothing.
    generation: int = 0
    # The token the vault holds for this profile as far as this daemon knows (the same object: nothing
    # to write again), and whether the vault was read since the daemon started.
    vaulted: Token | None = field(default=None, repr=False)
    vault_read: bool = False

    def to_record(self) -> dict[str, object]:
        record: dict[str, object] = {name: getattr(self.profile, name) for name in _PROFILE_FIELDS}
        record.update(
            key=self.profile.key,
            account=self.account,
            home_account_id=self.home_account_id,
            expires_on=self.token.expires_on if self.token else None,
            last_refresh=self.last_refresh,
            last_used=self.last_used,
            needs_sign_in=self.needs_sign_in,
            # Signed out on purpose, or an automatic sign-in abandoned: after a restart too, only a person
            # starts the next sign-in (no browser tab opens for an IDE's background kubectl).
            auto_sign_in_blocked=self.auto_sign_in_blocked,
        )
        return record

    @classmethod
    def from_record(cls, record: dict[str, object]) -> ProfileState:
        """Rebuild from a registry record; raises ValueError/TypeError on a malformed one."""
        values = {name: record[name] for name in _PROFILE_FIELDS if name in record}
        profile = Profile(**values)  # type: ignore[arg-type]
        return cls(
            profile=profile,
            account=str(record.get("account") or ""),
            home_account_id=str(record.get("home_account_id") or ""),
            last_refresh=float(record.get("last_refresh") or 0.0),  # type: ignore[arg-type]
            last_used=float(record.get("last_used") or 0.0),  # type: ignore[arg-type]
            needs_sign_in=bool(record.get("needs_sign_in")),
            auto_sign_in_blocked=bool(record.get("auto_sign_in_blocked")),
        )


@dataclass(frozen=True)
class ProfileView:
    """A read-only snapshot for status, the tray and the CLI. No secrets."""

    key: str
    login: str
    authority: str
    tenant_id: str
    client_id: str
    server_id: str
    account: str
    state: ProfileStatus
    expires_on: float | None
    last_refresh: float
    last_error: str

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)
