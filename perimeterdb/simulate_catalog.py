"""What ``perimeterdb simulate`` checks its input against: the actions and condition keys of the services
perimeterdb speaks (DynamoDB, DynamoDB Streams, IAM, STS, Organizations).

Actions come from botocore's service models (one action per API operation) plus the IAM-only DynamoDB
actions of the Service Authorization Reference (``ConditionCheckItem``, the ``PartiQL*`` actions, …);
condition keys are AWS's global keys and DynamoDB's service keys. A name outside these lists is not an
error for the policy engine (a policy may name any action), but in a simulation it is almost always a typo
(``dynamodb:GetIten``), which a wildcard policy would silently allow.
"""

from __future__ import annotations

from functools import cache

SERVICES = {"dynamodb": ("dynamodb", "dynamodbstreams"), "iam": ("iam",), "sts": ("sts",),
            "organizations": ("organizations",)}

# IAM actions with no API operation of the same name (Service Authorization Reference, dynamodb).
DYNAMODB_EXTRA = (
    "ConditionCheckItem PartiQLDelete PartiQLInsert PartiQLSelect PartiQLUpdate CreateTableReplica "
    "DeleteTableReplica AssociateTableReplica DisassociateTableReplica ReadDataForReplication "
    "WriteDataForReplication ReplicateSettings RestoreTableFromAwsBackup StartAwsBackupJob "
    "CreateGlobalTableWitness DeleteGlobalTableWitness UpdateGlobalTableVersion SearchVectors "
    "GetAbacStatus UpdateAbacStatus"
).split()
STS_EXTRA = ("SetSourceIdentity", "TagSession", "SetContext")

GLOBAL_KEYS = {k.lower() for k in (
    "aws:CalledVia aws:CalledViaFirst aws:CalledViaLast aws:CurrentTime aws:EpochTime aws:FederatedProvider "
    "aws:MultiFactorAuthAge aws:MultiFactorAuthPresent aws:PrincipalAccount aws:PrincipalArn "
    "aws:PrincipalIsAWSService aws:PrincipalOrgID aws:PrincipalOrgPaths aws:PrincipalServiceName "
    "aws:PrincipalServiceNamesList aws:PrincipalType aws:RequestedRegion aws:ResourceAccount "
    "aws:ResourceOrgID aws:ResourceOrgPaths aws:SecureTransport aws:SourceAccount aws:SourceArn "
    "aws:SourceIdentity aws:SourceIp aws:SourceOrgID aws:SourceOrgPaths aws:SourceVpc aws:SourceVpcArn "
    "aws:SourceVpce aws:TagKeys aws:TokenIssueTime aws:UserAgent aws:userid aws:username aws:ViaAWSService "
    "aws:VpcSourceIp aws:VpceAccount aws:VpceOrgID aws:VpceOrgPaths aws:Ec2InstanceSourceVpc "
    "aws:Ec2InstanceSourcePrivateIPv4 aws:Referer aws:AssumedRoot aws:IsMcpServiceAction "
    "dynamodb:Attributes dynamodb:EnclosingOperation dynamodb:FirstPartitionKeyValues dynamodb:FullTableScan "
    "dynamodb:LeadingKeys dynamodb:ReturnConsumedCapacity dynamodb:ReturnValues dynamodb:Select "
    "dynamodb:SecondPartitionKeyValues dynamodb:ThirdPartitionKeyValues dynamodb:FourthPartitionKeyValues "
    "sts:ExternalId sts:RoleSessionName sts:SourceIdentity sts:TransitiveTagKeys sts:DurationSeconds "
    "iam:PermissionsBoundary iam:PolicyARN iam:PassedToService iam:AssociatedResourceArn "
    "organizations:PolicyType organizations:ServicePrincipal"
).split()}
TAG_PREFIXES = ("aws:principaltag/", "aws:resourcetag/", "aws:requesttag/", "iam:resourcetag/")


@cache
def actions(service: str) -> dict[str, str] | None:
    """The known actions of a service (lower case -> AWS's spelling, without the prefix); None for a
    service perimeterdb does not speak."""
    models = SERVICES.get(service)
    if models is None:
        return None
    import botocore.loaders

    loader = botocore.loaders.create_loader()
    names: set[str] = set()
    for model in models:
        names.update(loader.load_service_model(model, "service-2")["operations"])
    if service == "dynamodb":
        names.update(DYNAMODB_EXTRA)
    if service == "sts":
        names.update(STS_EXTRA)
    return {n.lower(): n for n in names}


def action_warning(action: str) -> str | None:
    service, sep, name = action.partition(":")
    if not sep or not name:
        return f"{action!r} is not an action (service:Name)"
    if "*" in name or "?" in name:
        return None
    known = actions(service.lower())
    if known is None:
        return f"{action}: perimeterdb does not serve {service}; the decision is the policies' alone"
    if name.lower() not in known:
        close = sorted(known[k] for k in known if _near(k, name.lower()))[:3]
        hint = f" (did you mean {', '.join(f'{service}:{c}' for c in close)}?)" if close else ""
        return f"{action} is not an action of {service}{hint}"
    return None


def key_warning(key: str) -> str | None:
    lowered = key.lower()
    if lowered in GLOBAL_KEYS or lowered.startswith(TAG_PREFIXES):
        return None
    return f"{key} is not a condition key AWS defines for these services; policies that test it will see it"


def _near(a: str, b: str) -> bool:
    """Edit distance at most 2 (a typo)."""
    if abs(len(a) - len(b)) > 2:
        return False
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1] <= 2
