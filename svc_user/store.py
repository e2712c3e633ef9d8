"""Storage of users, uniqueness claims and sessions: the port and its DynamoDB adapter.

Table layout (one table, `pk`/`sk`):
    USER#<id>          PROFILE         the user (versioned)
    USER#<id>          SESSION#<sid>   one refresh family
    USERNAME#<name>    CLAIM           who holds a username
    EMAIL#<email>      CLAIM           who holds an email address
    REVOKED#<h>#<n>    <kind>#<id>     a revoked token or session, in force until
                                       `expires_at`; h = expiry hour, n = shard

The REVOKED items are the record of revocations; Redis holds a copy for the fast
path and is restored from them when it loses its data. Grouping by expiry hour lets a
restore read only the hours still in force; the shards spread the writes of one hour
over several partitions. `ttl` (= expires_at) lets DynamoDB's TTL delete them later.

Every change is one conditional write to one item. A claim whose user item never
appeared (a registration that crashed half-way) may be taken over once it is older
than `stale_claim_seconds`, so no name is stuck for good.
"""

from __future__ import annotations

import zlib
from datetime import date, datetime
from typing import Literal, Protocol

from common.context import outliving_the_request
from common.dynamo import Item, Table, decode_time, encode_time
from common.revocation import Revocation
from svc_user.domain import Session, User

ClaimKind = Literal["USERNAME", "EMAIL"]

PROFILE = "PROFILE"
CLAIM = "CLAIM"
REVOCATION_SHARDS = 4
_HOUR = 3600


def _revocation_partition(expiry_hour: int, shard: int) -> str:
    return f"REVOKED#{expiry_hour}#{shard}"


class UserStore(Protocol):
    def claim(self, kind: ClaimKind, value: str, user_id: str, now: datetime) -> bool: ...
    def release_claim(self, kind: ClaimKind, value: str, user_id: str) -> None: ...
    def claim_holder(self, kind: ClaimKind, value: str) -> str | None: ...
    def create_user(self, user: User) -> None: ...
    def get_user(self, user_id: str) -> User | None: ...
    def replace_user(self, user: User, expected_version: int) -> bool: ...
    def put_session(self, session: Session) -> None: ...
    def get_session(self, user_id: str, session_id: str) -> Session | None: ...
    def rotate_session(
        self, user_id: str, session_id: str, spent_refresh_id: str, new_refresh_id: str
    ) -> bool: ...
    def revoke_session(self, user_id: str, session_id: str) -> None: ...
    def list_sessions(self, user_id: str) -> list[Session]: ...
    def record_revocation(self, revocation: Revocation) -> None: ...
    def revocations_in_force(self, now: int, horizon_seconds: int) -> list[Revocation]:
        """Every recorded revocation with now < expires_at <= now + horizon_seconds."""
        ...


def user_to_item(user: User) -> Item:
    return {
        "pk": f"USER#{user.user_id}",
        "sk": PROFILE,
        "user_id": user.user_id,
        "username": user.username,
        "email": user.email,
        "password_hash": user.password_hash,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "phone": user.phone,
        "date_of_birth": user.date_of_birth.isoformat() if user.date_of_birth else None,
        "marketing_emails_consent": user.marketing_emails_consent,
        "role": user.role,
        "created_at": encode_time(user.created_at),
        "updated_at": encode_time(user.updated_at),
        "version": user.version,
        "closed_at": encode_time(user.closed_at) if user.closed_at else None,
    }


def user_from_item(item: Item) -> User:
    birth = item.get("date_of_birth")
    return User(
        user_id=item["user_id"],
        username=item["username"],
        email=item["email"],
        password_hash=item["password_hash"],
        first_name=item["first_name"],
        last_name=item["last_name"],
        phone=item.get("phone"),
        date_of_birth=date.fromisoformat(birth) if birth else None,
        marketing_emails_consent=bool(item.get("marketing_emails_consent", False)),
        role=item.get("role", "user"),
        created_at=decode_time(item["created_at"]),
        updated_at=decode_time(item["updated_at"]),
        version=int(item["version"]),
        closed_at=decode_time(item["closed_at"]) if item.get("closed_at") else None,
    )


def session_to_item(session: Session) -> Item:
    return {
        "pk": f"USER#{session.user_id}",
        "sk": f"SESSION#{session.session_id}",
        "session_id": session.session_id,
        "user_id": session.user_id,
        "current_refresh_id": session.current_refresh_id,
        "revoked": session.revoked,
        "created_at": encode_time(session.created_at),
        "expires_at": encode_time(session.expires_at),
    }


def session_from_item(item: Item) -> Session:
    return Session(
        session_id=item["session_id"],
        user_id=item["user_id"],
        current_refresh_id=item["current_refresh_id"],
        revoked=bool(item["revoked"]),
        created_at=decode_time(item["created_at"]),
        expires_at=decode_time(item["expires_at"]),
    )


def claim_item(kind: ClaimKind, value: str, user_id: str, now: datetime) -> Item:
    """The item that says `user_id` holds the username or email `value`."""
    return {
        "pk": f"{kind}#{value}",
        "sk": CLAIM,
        "user_id": user_id,
        "claimed_at": encode_time(now),
    }


class DynamoUserStore:
    def __init__(self, table: Table, stale_claim_seconds: int = 60) -> None:
        self._table = table
        self._stale_claim_seconds = stale_claim_seconds

    def _get(self, pk: str, sk: str) -> Item | None:
        return self._table.get({"pk": pk, "sk": sk})

    def claim(self, kind: ClaimKind, value: str, user_id: str, now: datetime) -> bool:
        item = claim_item(kind, value, user_id, now)
        if self._table.put_if(item, "attribute_not_exists(pk)"):
            return True
        current = self._get(f"{kind}#{value}", CLAIM)
        if current is None:
            # Released between our write and our read: try once more.
            return self._table.put_if(item, "attribute_not_exists(pk)")
        if current["user_id"] == user_id:
            return True
        holder_exists = self._get(f"USER#{current['user_id']}", PROFILE) is not None
        claimed_for = now - decode_time(current["claimed_at"])
        is_stale = claimed_for.total_seconds() > self._stale_claim_seconds
        if holder_exists or not is_stale:
            return False
        return self._table.put_if(item, "user_id = :holder", {":holder": current["user_id"]})

    def release_claim(self, kind: ClaimKind, value: str, user_id: str) -> None:
        # Not ours (any more) means nothing to release: a lost condition is fine. A
        # release undoes or completes a change, so a caller out of time does not cut it
        # (else the name stays held until the claim is stale).
        with outliving_the_request():
            self._table.delete_if(
                {"pk": f"{kind}#{value}", "sk": CLAIM}, "user_id = :me", {":me": user_id}
            )

    def claim_holder(self, kind: ClaimKind, value: str) -> str | None:
        item = self._get(f"{kind}#{value}", CLAIM)
        return None if item is None else str(item["user_id"])

    def create_user(self, user: User) -> None:
        if not self._table.put_if(user_to_item(user), "attribute_not_exists(pk)"):
            raise RuntimeError(f"user id collision: {user.user_id}")

    def get_user(self, user_id: str) -> User | None:
        item = self._get(f"USER#{user_id}", PROFILE)
        return None if item is None else user_from_item(item)

    def replace_user(self, user: User, expected_version: int) -> bool:
        return self._table.put_if(
            user_to_item(user), "version = :expected", {":expected": expected_version}
        )

    def put_session(self, session: Session) -> None:
        self._table.put(session_to_item(session))

    def get_session(self, user_id: str, session_id: str) -> Session | None:
        item = self._get(f"USER#{user_id}", f"SESSION#{session_id}")
        return None if item is None else session_from_item(item)

    def rotate_session(
        self, user_id: str, session_id: str, spent_refresh_id: str, new_refresh_id: str
    ) -> bool:
        return self._table.update_if(
            {"pk": f"USER#{user_id}", "sk": f"SESSION#{session_id}"},
            "SET current_refresh_id = :new",
            "current_refresh_id = :spent AND revoked = :false",
            {":new": new_refresh_id, ":spent": spent_refresh_id, ":false": False},
        )

    def revoke_session(self, user_id: str, session_id: str) -> None:
        # A session that does not exist has nothing to revoke.
        self._table.update_if(
            {"pk": f"USER#{user_id}", "sk": f"SESSION#{session_id}"},
            "SET revoked = :true",
            "attribute_exists(pk)",
            {":true": True},
        )

    def list_sessions(self, user_id: str) -> list[Session]:
        return [
            session_from_item(item) for item in self._table.query(f"USER#{user_id}", "SESSION#")
        ]

    def record_revocation(self, revocation: Revocation) -> None:
        shard = zlib.crc32(revocation.subject_id.encode()) % REVOCATION_SHARDS
        self._table.put(
            {
                "pk": _revocation_partition(revocation.expires_at // _HOUR, shard),
                "sk": f"{revocation.kind}#{revocation.subject_id}",
                "kind": revocation.kind,
                "subject_id": revocation.subject_id,
                "expires_at": revocation.expires_at,
                "ttl": revocation.expires_at,
            }
        )

    def revocations_in_force(self, now: int, horizon_seconds: int) -> list[Revocation]:
        found: list[Revocation] = []
        for hour in range(now // _HOUR, (now + horizon_seconds) // _HOUR + 1):
            for shard in range(REVOCATION_SHARDS):
                found.extend(
                    Revocation(item["kind"], item["subject_id"], int(item["expires_at"]))
                    for item in self._table.query(_revocation_partition(hour, shard))
                    if int(item["expires_at"]) > now
                )
        return found
