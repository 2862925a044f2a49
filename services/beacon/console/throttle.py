"""Failed-login throttling: per user name and per client address, exponential backoff, and a
lockout of the user name that only an admin lifts.

Pure: state plus ``now`` in, a verdict out. While a key is in its backoff, a login attempt is
refused without checking the password (so guesses during the wait cost nothing and teach
nothing). The user name's counter ends with a successful login or an unlock; an address's
counter is forgotten after ``forget_after_s`` without failures (addresses are shared, so they
are slowed down, never locked). At most ``max_tracked`` keys of each kind are kept; beyond
that the oldest is dropped, so a flood of invented names cannot exhaust memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures_per_user: int = 3
    free_failures_per_address: int = 10
    backoff_s: float = 1.0  # after the free failures: backoff_s, then doubled at each failure
    max_backoff_s: float = 300.0
    lockout_after: int = 10  # failures in a row for one user name: locked until an admin unlocks
    forget_after_s: float = 3600.0
    max_tracked: int = 100_000


@dataclass(frozen=True)
class Failures:
    count: int = 0
    last_at: float = 0.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: float = 0.0
    reason: str = ""  # "throttled" or "locked" when refused


def backoff_s(failures: int, free: int, policy: ThrottlePolicy) -> float:
    """Seconds an attempt must wait after the last of ``failures`` failures."""
    over = failures - free
    if over < 0:
        return 0.0
    return min(policy.max_backoff_s, policy.backoff_s * 2.0 ** min(over, 60))


@dataclass
class LoginThrottle:
    policy: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    users: dict[str, Failures] = field(default_factory=dict)
    addresses: dict[str, Failures] = field(default_factory=dict)

    def _wait(self, failures: Failures | None, free: int, now: float) -> float:
        if failures is None:
            return 0.0
        return max(0.0, failures.last_at + backoff_s(failures.count, free, self.policy) - now)

    def check(self, user: str, address: str, now: float, locked: bool, unlocked_at: float | None = None) -> Verdict:
        """May this attempt check a password? ``locked``: the user name is locked (by any replica);
        ``unlocked_at``: when an admin last unlocked it (failures before that no longer count)."""
        self._forget_stale(now)
        counted = self.users.get(user)
        if counted is not None and unlocked_at is not None and counted.last_at <= unlocked_at:
            del self.users[user]
        stale = self.addresses.get(address)
        if stale is not None and now - stale.last_at > self.policy.forget_after_s:
            del self.addresses[address]
        if locked:
            return Verdict(False, reason="locked")
        wait = max(
            self._wait(self.users.get(user), self.policy.free_failures_per_user, now),
            self._wait(self.addresses.get(address), self.policy.free_failures_per_address, now),
        )
        return Verdict(True) if wait <= 0 else Verdict(False, retry_after_s=wait, reason="throttled")

    def failed(self, user: str, address: str, now: float) -> bool:
        """Count a wrong password; True when the user name is to be locked now."""
        self._make_room()
        before = self.users.get(user, Failures())
        self.users[user] = Failures(before.count + 1, now)
        at_address = self.addresses.get(address, Failures())
        self.addresses[address] = Failures(at_address.count + 1, now)
        return before.count + 1 == self.policy.lockout_after

    def succeeded(self, user: str) -> None:
        self.users.pop(user, None)

    def _forget_stale(self, now: float) -> None:
        if len(self.addresses) > 1024:  # a full scan now and then, not at every attempt
            for key in [k for k, f in self.addresses.items() if now - f.last_at > self.policy.forget_after_s]:
                del self.addresses[key]

    def _make_room(self) -> None:
        for table in (self.users, self.addresses):
            while len(table) >= self.policy.max_tracked:
                del table[min(table, key=lambda k: table[k].last_at)]
