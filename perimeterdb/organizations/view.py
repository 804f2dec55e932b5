"""What the authorizer reads from the organization: where an account sits and which policies apply.

``placement(account)`` answers, for one account: the organization id, the account's org path(s) in AWS
format (``o-xxx/r-xxx/ou-xxx/``), whether it is the management account, and the SCP and RCP levels from the
root through each OU to the account itself, each level a tuple of compiled policies. A policy type that is
not enabled at the root gives no levels (an empty tuple), as if no such policies existed.

Each document is parsed and compiled once, cached by policy id and a hash of its content. Placements are
cached per generation; the generation is re-read from storage on each call (one point read), so a change
made through the API by this or any other server process is seen by the very next request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from perimeterdb.organizations.state import POLICY_KINDS, RCP, SCP, OrgState
from perimeterdb.organizations.store import OrgStore
from perimeterdb.policy import CompiledPolicy, PolicyRef
from perimeterdb.policy.stored import compile_stored

Levels = tuple[tuple[CompiledPolicy, ...], ...]
_KIND_NAMES = {SCP: "scp", RCP: "rcp"}


@dataclass(frozen=True, slots=True)
class AccountPlacement:
    account_id: str
    org_id: str
    org_arn: str
    management_account: str
    org_paths: tuple[str, ...]
    is_management: bool
    is_delegated_admin: bool
    scp_levels: Levels
    rcp_levels: Levels
    generation: int


class OrganizationView:
    def __init__(self, store: OrgStore) -> None:
        self.store = store
        self._generation = -1
        self._shared_seen: int | None = None
        self._state: OrgState | None = None
        self._placements: dict[str, AccountPlacement | None] = {}
        self._compiled: dict[tuple[str, str], CompiledPolicy] = {}
        store.on_change(self._forget)

    @property
    def generation(self) -> int:
        """The organization generation last seen (cheap; ``refresh`` reads the stored one)."""
        return self.store.last_generation

    def _forget(self) -> None:
        self._generation = -1

    async def refresh(self) -> OrgState | None:
        """The current organization (None when there is none), re-read only if the generation moved.

        The engine's shared metadata generation (bumped by any process on any metadata commit) is read
        first, from memory: while it has not moved, nothing in the organization can have changed, and the
        point read of the organization's own generation row is skipped.
        """
        shared = getattr(self.store.engine, "generation", None)
        shared_now = shared.read() if shared is not None else None
        if shared_now is not None and shared_now == self._shared_seen and self._generation != -1:
            return self._state
        self._shared_seen = shared_now
        generation = await self.store.generation()
        if generation != self._generation:
            self._state = await self.store.load()
            self._placements = {}
            self._generation = generation
        return self._state

    async def placement(self, account_id: str) -> AccountPlacement | None:
        state = await self.refresh()
        if state is None:
            return None
        if account_id in self._placements:
            return self._placements[account_id]
        found = self._place(state, account_id)
        self._placements[account_id] = found
        return found

    def _place(self, state: OrgState, account_id: str) -> AccountPlacement | None:
        record = state.doc["accounts"].get(account_id)
        if record is None:
            return None
        chain = [*state.chain(record["parent"]), account_id]
        return AccountPlacement(
            account_id=account_id,
            org_id=state.org_id,
            org_arn=state.org_arn(),
            management_account=state.management,
            org_paths=(state.path_of(record["parent"]),),
            is_management=account_id == state.management,
            is_delegated_admin=account_id in state.doc.get("delegated_admins", []),
            scp_levels=self._levels(state, chain, SCP),
            rcp_levels=self._levels(state, chain, RCP),
            generation=self._generation,
        )

    def _levels(self, state: OrgState, chain: list[str], policy_type: str) -> Levels:
        if not state.enabled(policy_type):
            return ()
        return tuple(
            tuple(self.compiled(state, pid) for pid in state.attached(target, policy_type)) for target in chain
        )

    def compiled(self, state: OrgState, policy_id: str) -> CompiledPolicy:
        p = state.doc["policies"][policy_id]
        digest = hashlib.sha256(p["content"].encode()).hexdigest()
        key = (policy_id, digest)
        found = self._compiled.get(key)
        if found is None:
            kind = POLICY_KINDS[p["type"]]
            ref = PolicyRef(_KIND_NAMES[p["type"]], policy_id, p["name"], state.policy_arn(policy_id))
            found = compile_stored(p["content"], kind, ref)  # a broken SCP/RCP denies, never raises
            if len(self._compiled) > 10_000:
                self._compiled.clear()
            self._compiled[key] = found
        return found
