"""What the prover knows about a world: accounts and their place in the organization, principals with their
policies, tables, VPC endpoints and the sealed identities. Plain values, built by an adapter outside the
prover (``perimeterdb.prover_world``) or by hand in tests; nothing here reads storage.

``cases`` turns a question's scope into the finite part of the search: which principal (one that exists,
or, in *any principal* mode, a new user or role session in any account of the world or in an account
outside it), from which network origin (the internet, or each VPC endpoint), on which resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perimeterdb.policy import CompiledPolicy, PolicySet, PrincipalInfo
from perimeterdb.prover.request import Case, Fresh, Origin

__all__ = ["TABLE_ACTIONS", "Account", "Endpoint", "Principal", "Snapshot", "Table", "cases", "origins"]

# Every IAM action whose resource is a DynamoDB table (Service Authorization Reference, "table*").
TABLE_ACTIONS = tuple(
    f"dynamodb:{a}"
    for a in (
        "AssociateTableReplica BatchGetItem BatchWriteItem ConditionCheckItem CreateBackup CreateGlobalTable "
        "CreateGlobalTableWitness CreateTable CreateTableReplica DeleteGlobalTableWitness DeleteItem "
        "DeleteResourcePolicy DeleteTable DeleteTableReplica DescribeContinuousBackups "
        "DescribeContributorInsights DescribeGlobalTable DescribeGlobalTableSettings "
        "DescribeKinesisStreamingDestination DescribeTable DescribeTableReplicaAutoScaling DescribeTimeToLive "
        "DisableKinesisStreamingDestination DisassociateTableReplica EnableKinesisStreamingDestination "
        "ExportTableToPointInTime GetItem GetResourcePolicy ImportTable ListTagsOfResource PartiQLDelete "
        "PartiQLInsert PartiQLSelect PartiQLUpdate PutItem PutResourcePolicy Query ReadDataForReplication "
        "ReplicateSettings RestoreTableFromAwsBackup RestoreTableFromBackup RestoreTableToPointInTime Scan "
        "SearchVectors StartAwsBackupJob TagResource UntagResource UpdateContinuousBackups "
        "UpdateContributorInsights UpdateGlobalTable UpdateGlobalTableSettings UpdateGlobalTableVersion "
        "UpdateItem UpdateKinesisStreamingDestination UpdateTable UpdateTableReplicaAutoScaling "
        "UpdateTimeToLive WriteDataForReplication"
    ).split()
)


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    org_id: str | None = None
    org_paths: tuple[str, ...] = ()
    is_management: bool = False
    scp_levels: tuple[tuple[CompiledPolicy, ...], ...] = ()
    rcp_levels: tuple[tuple[CompiledPolicy, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class Principal:
    """A principal that exists, as it calls (a role appears as a session of it)."""

    info: PrincipalInfo
    identity: tuple[CompiledPolicy, ...] = ()
    boundary: CompiledPolicy | None = None
    session: tuple[CompiledPolicy, ...] | None = None


@dataclass(frozen=True, slots=True)
class Table:
    arn: str
    account: str
    region: str
    policy: CompiledPolicy | None = None
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.arn.split(":table/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    vpc_id: str
    account: str
    cidrs: tuple[str, ...] = ()
    policy: CompiledPolicy | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    accounts: dict[str, Account] = field(default_factory=dict)
    principals: tuple[Principal, ...] = ()
    tables: tuple[Table, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    sealed: frozenset[str] = frozenset()  # sealed break-glass role names
    # Must a new principal have a creator among the existing principals of its account (iam:CreateRole /
    # iam:CreateUser allowed on its ARN)? An account outside the world is the attacker's own: no limit.
    require_creator: bool = True

    def table(self, ref: str) -> Table | None:
        """A table by ARN, or by name when only one account has a table of that name."""
        exact = [t for t in self.tables if t.arn == ref]
        if exact:
            return exact[0]
        named = [t for t in self.tables if t.name == ref]
        if len(named) > 1:
            raise LookupError(
                f"table name {ref!r} is ambiguous: give its ARN ({', '.join(t.arn for t in named)})"
            )
        return named[0] if named else None


def origins(snapshot: Snapshot) -> list[tuple[Origin, CompiledPolicy | None]]:
    out: list[tuple[Origin, CompiledPolicy | None]] = [(Origin("internet (public listener)"), None)]
    for e in snapshot.endpoints:
        account = snapshot.accounts.get(e.account)
        out.append(
            (
                Origin(
                    f"VPC endpoint {e.id} in {e.vpc_id}",
                    vpce_id=e.id,
                    vpc_id=e.vpc_id,
                    cidrs=e.cidrs,
                    vpce_account=e.account,
                    vpce_org_id=account.org_id if account else None,
                    vpce_org_paths=account.org_paths if account else (),
                ),
                e.policy,
            )
        )
    return out


def _creators(snapshot: Snapshot, account: Account, trusted: frozenset[str]) -> tuple[Case, ...]:
    """One case per existing principal of the account: it calls IAM (from anywhere) to create a principal
    whose ARN is the new one's (the case's resource is free and bound by the caller)."""
    out = []
    for p in snapshot.principals:
        if p.info.account != account.id or p.info.principal_arn in trusted:
            continue
        policies = PolicySet(
            identity=p.identity,
            boundary=p.boundary,
            session=p.session,
            scp_levels=account.scp_levels,
            principal_in_management_account=account.is_management,
            principal_in_org=account.org_id is not None,
        )
        out.append(
            Case(
                f"{p.info.principal_arn} creates",
                p.info,
                policies,
                Origin("any origin"),
                "",
                "us-east-1",
                account.id,
                resource_free=True,
            )
        )
    return tuple(out)


def _anonymous() -> PrincipalInfo:
    return PrincipalInfo("anonymous", "anonymous", "", "Anonymous", "anonymous")


def cases(
    snapshot: Snapshot,
    resources: list[tuple[str, str | None, str, Table | None]],
    *,
    any_principal: bool,
    principals: list[Principal] | None = None,
    include_anonymous: bool = True,
    fresh_accounts: list[str | None] | None = None,
    origin_filter: object = None,
    trusted: frozenset[str] = frozenset(),
) -> list[Case]:
    """Every (principal, origin, resource) the question ranges over.

    ``resources``: (arn, account, region, table) tuples. ``principals``: the existing principals to
    consider (default: all). ``fresh_accounts``: where new principals may be created in *any principal*
    mode (default: every account of the world, and one outside it: ``None``). ``trusted``: principal ARNs
    the question trusts (the excepted and sealed break-glass roles): what they could create is not counted.
    """
    out: list[Case] = []
    world_accounts = tuple(snapshot.accounts)
    existing = list(snapshot.principals) if principals is None else principals
    who: list[tuple[str, PrincipalInfo | Fresh, Principal | None]] = []
    for p in existing:
        who.append((p.info.arn, p.info, p))
    if include_anonymous:
        who.append(("anonymous", _anonymous(), None))
    if any_principal:
        for account_id in fresh_accounts if fresh_accounts is not None else [*world_accounts, None]:
            account = snapshot.accounts.get(account_id) if account_id else None
            for kind in ("AssumedRole", "User"):
                label = f"a new {'role' if kind == 'AssumedRole' else 'user'} in " + (
                    f"account {account_id}" if account_id else "an account outside the world"
                )
                create = "iam:CreateRole" if kind == "AssumedRole" else "iam:CreateUser"
                creators = None
                if snapshot.require_creator and account is not None:
                    creators = _creators(snapshot, account, trusted)
                    if not creators:
                        continue  # nobody in that account may create principals
                fresh = Fresh(
                    kind,
                    account_id,
                    org_id=account.org_id if account else None,
                    org_paths=account.org_paths if account else (),
                    forbidden=tuple(sorted(snapshot.sealed)),
                    world_accounts=world_accounts,
                    creators=creators,
                    create_action=create,
                )
                who.append((label, fresh, None))
    for arn, account_id, region, table in resources:
        resource_account = snapshot.accounts.get(account_id) if account_id else None
        for origin, vpce_policy in origins(snapshot):
            if callable(origin_filter) and not origin_filter(origin):
                continue
            for label, principal, facts in who:
                p_account_id = principal.account
                p_account = snapshot.accounts.get(p_account_id) if p_account_id else None
                in_org = p_account is not None and p_account.org_id is not None
                res_in_org = resource_account is not None and resource_account.org_id is not None
                policies = PolicySet(
                    identity=facts.identity if facts else (),
                    boundary=facts.boundary if facts else None,
                    session=facts.session if facts else None,
                    resource=table.policy if table else None,
                    scp_levels=p_account.scp_levels if p_account else (),
                    rcp_levels=resource_account.rcp_levels if resource_account else (),
                    vpce=vpce_policy,
                    principal_in_management_account=bool(p_account and p_account.is_management),
                    resource_in_management_account=bool(resource_account and resource_account.is_management),
                    principal_in_org=in_org,
                    resource_in_org=res_in_org,
                    same_organization=bool(
                        in_org and res_in_org and p_account.org_id == resource_account.org_id  # type: ignore[union-attr]
                    ),
                )
                out.append(
                    Case(
                        f"{label} via {origin.label} on {arn}",
                        principal,
                        policies,
                        origin,
                        arn,
                        region,
                        account_id,
                        resource_tags=table.tags if table else (),
                        resource_org_id=resource_account.org_id if resource_account else None,
                        resource_org_paths=resource_account.org_paths if resource_account else (),
                    )
                )
    return out
