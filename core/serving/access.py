"""Who may change what: a run, an experiment, a job or an upload belongs to the student who made it.

Everyone may look at everything (comparing runs is the lesson); only the owner or the teacher may
delete, resume into, rename or overwrite. What the disk keeps of an owner is `owner_key(owner)`, a
salted hash: reading the checkpoints or data folder never reveals the ids that ride in students'
URLs (a raw id there would let anyone act as that student). Records without an owner (made by the
CLI or before owners existed) belong to the teacher: students may look, not change.
"""
from __future__ import annotations

import hashlib
import hmac

# A key is the hex digest of this prefix + the owner id (unchanged from the uploads' first version,
# so the folders students uploaded before owners existed keep their uploader).
_SALT = "ae-lab-upload:"
KEY_LENGTH = 64


class OwnerError(PermissionError):
    """Someone other than the owner (or the teacher) asked to change something; one sentence."""


def owner_key(owner: str) -> str:
    """What the disk keeps of an owner id (also an OIDC subject): a salted SHA-256, hex."""
    return hashlib.sha256(f"{_SALT}{owner}".encode("utf-8")).hexdigest()


def is_owner_key(value) -> bool:
    return isinstance(value, str) and len(value) == KEY_LENGTH and all(c in "0123456789abcdef" for c in value)


def same_owner(recorded_key: str | None, by: str | None) -> bool:
    """Whether the owner id `by` is the one whose key was recorded (compared in constant time)."""
    if not recorded_key or not by:
        return False
    return hmac.compare_digest(recorded_key.encode(), owner_key(by).encode())


def may_change(recorded_key: str | None, by: str | None, teacher: bool = False) -> bool:
    """The rule: the teacher (or this process itself: `by` None, e.g. the CLI or a shutdown) may
    change anything; a student only what they own. Something without a recorded owner is the
    teacher's."""
    if teacher or by is None:
        return True
    return same_owner(recorded_key, by)


def check_may_change(recorded_key: str | None, by: str | None, teacher: bool, what: str, action: str) -> None:
    """OwnerError (one sentence) unless `by` may `action` (e.g. "delete") `what` (e.g. "run conv-z2")."""
    if not may_change(recorded_key, by, teacher):
        raise OwnerError(f"Only the student who made {what} (or the teacher) can {action} it; "
                         "you can still look at it, or make a copy of your own.")
