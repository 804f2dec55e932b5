"""The organization as one value, and its transitions.

``OrgState`` wraps the stored JSON document. Every API call that changes the organization runs one method
here inside an atomic read-modify-write (``store.OrgStore.mutate``); a method either completes or raises an
Organizations error and nothing is written. Reads (``describe_*``, ``children``, ``path_of``) are pure.

Document shape::

    {"org": {id, arn, feature_set, management, management_email},
     "root": {id, name, policy_types: {TYPE: "ENABLED"}},
     "ous": {ou_id: {id, name, parent}},                 # insertion order = creation order
     "accounts": {account_id: {id, name, email, parent, joined_method, joined, status}},
     "policies": {policy_id: {id, name, description, type, content, aws_managed}},
     "attachments": {target_id: [policy_id, ...]},
     "create_requests": {car_id: {...CreateAccountStatus...}},
     "delegated_admins": [account_id, ...]}

Decisions, written down: the 5,120-character limit counts the content exactly as sent; at most five
policies of one type per target; RCPFullAWSAccess can never be detached ("can't be detached", RCP page), and
the last SCP of a target cannot be detached (ConstraintViolationException MIN_POLICY_TYPE_ATTACHMENT_LIMIT_
EXCEEDED). Enabling a policy type attaches its AWS-managed full-access policy to the root, every OU and every
account; disabling it detaches every policy of that type.
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

from perimeterdb.organizations import errors
from perimeterdb.policy import PolicyKind, PolicyParseError
from perimeterdb.policy.stored import check_policy

SCP = "SERVICE_CONTROL_POLICY"
RCP = "RESOURCE_CONTROL_POLICY"
SUPPORTED_TYPES = (SCP, RCP)
POLICY_KINDS = {SCP: PolicyKind.SCP, RCP: PolicyKind.RCP}
MAX_CONTENT = 5120
MAX_PER_TARGET = 5
MAX_OU_DEPTH = 5

FULL_ACCESS = {
    SCP: (
        "p-FullAWSAccess",
        "FullAWSAccess",
        "Allows access to every operation",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}',
    ),
    RCP: (
        "p-RCPFullAWSAccess",
        "RCPFullAWSAccess",
        "Allows access to every operation",
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}',
    ),
}

_LOWER_DIGITS = string.ascii_lowercase + string.digits
Doc = dict[str, Any]


def _rand(n: int) -> str:
    return "".join(secrets.choice(_LOWER_DIGITS) for _ in range(n))


def _type_segment(policy_type: str) -> str:
    return policy_type.lower()


def new_document(management: str, email: str, feature_set: str = "ALL", org_id: str | None = None) -> Doc:
    org_id = org_id or f"o-{_rand(10)}"
    root_id = f"r-{_rand(4)}"
    doc: Doc = {
        "org": {
            "id": org_id,
            "feature_set": feature_set,
            "management": management,
            "management_email": email,
        },
        "root": {"id": root_id, "name": "Root", "policy_types": {}},
        "ous": {},
        "accounts": {},
        "policies": {},
        "attachments": {},
        "create_requests": {},
        "delegated_admins": [],
    }
    for policy_type, (pid, name, description, content) in FULL_ACCESS.items():
        doc["policies"][pid] = {
            "id": pid,
            "name": name,
            "description": description,
            "type": policy_type,
            "content": content,
            "aws_managed": True,
        }
    doc["accounts"][management] = {
        "id": management,
        "name": "management",
        "email": email,
        "parent": root_id,
        "joined_method": "CREATED",
        "joined": time.time(),
        "status": "ACTIVE",
    }
    return doc


class OrgState:
    def __init__(self, doc: Doc) -> None:
        self.doc = doc

    # --- identity and ARNs ----------------------------------------------------------------------------

    @property
    def org_id(self) -> str:
        return str(self.doc["org"]["id"])

    @property
    def management(self) -> str:
        return str(self.doc["org"]["management"])

    @property
    def root_id(self) -> str:
        return str(self.doc["root"]["id"])

    def _arn(self, rest: str) -> str:
        return f"arn:aws:organizations::{self.management}:{rest}"

    def org_arn(self) -> str:
        return self._arn(f"organization/{self.org_id}")

    def root_arn(self) -> str:
        return self._arn(f"root/{self.org_id}/{self.root_id}")

    def ou_arn(self, ou_id: str) -> str:
        return self._arn(f"ou/{self.org_id}/{ou_id}")

    def account_arn(self, account: str) -> str:
        return self._arn(f"account/{self.org_id}/{account}")

    def policy_arn(self, policy_id: str) -> str:
        p = self.doc["policies"][policy_id]
        segment = _type_segment(p["type"])
        if p.get("aws_managed"):
            return f"arn:aws:organizations::aws:policy/{segment}/{policy_id}"
        return self._arn(f"policy/{self.org_id}/{segment}/{policy_id}")

    def target_arn(self, target: str) -> str:
        if target == self.root_id:
            return self.root_arn()
        if target.startswith("ou-"):
            return self.ou_arn(target)
        return self.account_arn(target)

    # --- reads ----------------------------------------------------------------------------------------

    def enabled(self, policy_type: str) -> bool:
        return self.doc["root"]["policy_types"].get(policy_type) == "ENABLED"

    def is_admin(self, account: str) -> bool:
        return account == self.management or account in self.doc.get("delegated_admins", [])

    def has_target(self, target: str) -> bool:
        return target == self.root_id or target in self.doc["ous"] or target in self.doc["accounts"]

    def parent_of(self, child: str) -> str | None:
        if child in self.doc["ous"]:
            return str(self.doc["ous"][child]["parent"])
        if child in self.doc["accounts"]:
            return str(self.doc["accounts"][child]["parent"])
        return None

    def chain(self, parent: str) -> list[str]:
        """Root first, then each OU down to ``parent`` itself."""
        out: list[str] = []
        node: str | None = parent
        for _ in range(MAX_OU_DEPTH + 2):
            if node is None:
                break
            out.append(node)
            if node == self.root_id:
                break
            node = self.parent_of(node)
        return list(reversed(out))

    def path_of(self, parent: str) -> str:
        """``o-xxx/r-xxx/ou-xxx/…/``: the value of aws:PrincipalOrgPaths for an account in ``parent``."""
        return "/".join([self.org_id, *self.chain(parent)]) + "/"

    def children(self, parent: str, child_type: str) -> list[str]:
        table = self.doc["ous"] if child_type == "ORGANIZATIONAL_UNIT" else self.doc["accounts"]
        return [cid for cid, rec in table.items() if rec["parent"] == parent]

    def attached(self, target: str, policy_type: str | None = None) -> list[str]:
        ids = self.doc["attachments"].get(target, [])
        if policy_type is None:
            return list(ids)
        return [p for p in ids if self.doc["policies"][p]["type"] == policy_type]

    def targets_of(self, policy_id: str) -> list[str]:
        return [t for t, ids in self.doc["attachments"].items() if policy_id in ids]

    def depth(self, ou_id: str) -> int:
        return len(self.chain(ou_id)) - 1

    # --- shapes ---------------------------------------------------------------------------------------

    def organization_shape(self) -> Doc:
        org = self.doc["org"]
        return {
            "Id": self.org_id,
            "Arn": self.org_arn(),
            "FeatureSet": org["feature_set"],
            "MasterAccountArn": f"arn:aws:organizations::{self.management}:account/{self.org_id}/{self.management}",
            "MasterAccountId": self.management,
            "MasterAccountEmail": org["management_email"],
            "AvailablePolicyTypes": [{"Type": t, "Status": "ENABLED"} for t in SUPPORTED_TYPES],
        }

    def root_shape(self) -> Doc:
        types = self.doc["root"]["policy_types"]
        return {
            "Id": self.root_id,
            "Arn": self.root_arn(),
            "Name": self.doc["root"]["name"],
            "PolicyTypes": [{"Type": t, "Status": s} for t, s in types.items()],
        }

    def ou_shape(self, ou_id: str) -> Doc:
        ou = self.doc["ous"][ou_id]
        return {"Id": ou_id, "Arn": self.ou_arn(ou_id), "Name": ou["name"], "Path": self.path_of(ou_id)}

    def account_shape(self, account: str) -> Doc:
        a = self.doc["accounts"][account]
        return {
            "Id": account,
            "Arn": self.account_arn(account),
            "Email": a["email"],
            "Name": a["name"],
            "Status": a["status"],
            "State": a["status"],
            "Paths": [self.path_of(a["parent"]) + account + "/"],
            "JoinedMethod": a["joined_method"],
            "JoinedTimestamp": a["joined"],
        }

    def policy_summary(self, policy_id: str) -> Doc:
        p = self.doc["policies"][policy_id]
        return {
            "Id": policy_id,
            "Arn": self.policy_arn(policy_id),
            "Name": p["name"],
            "Description": p["description"],
            "Type": p["type"],
            "AwsManaged": bool(p.get("aws_managed")),
        }

    def target_summary(self, target: str) -> Doc:
        if target == self.root_id:
            return {"TargetId": target, "Arn": self.root_arn(), "Name": "Root", "Type": "ROOT"}
        if target.startswith("ou-"):
            name = self.doc["ous"][target]["name"]
            return {"TargetId": target, "Arn": self.ou_arn(target), "Name": name, "Type": "ORGANIZATIONAL_UNIT"}
        name = self.doc["accounts"][target]["name"]
        return {"TargetId": target, "Arn": self.account_arn(target), "Name": name, "Type": "ACCOUNT"}

    # --- lookups that raise ---------------------------------------------------------------------------

    def require_parent(self, parent: str, what: str = "Parent") -> str:
        if parent != self.root_id and parent not in self.doc["ous"]:
            raise errors.not_found(what, "We can't find a root or OU with the ParentId that you specified.")
        return parent

    def require_ou(self, ou_id: str) -> Doc:
        ou = self.doc["ous"].get(ou_id)
        if ou is None:
            raise errors.not_found("OrganizationalUnit", "We can't find an OU with the OrganizationalUnitId.")
        return ou  # type: ignore[no-any-return]

    def require_account(self, account: str) -> Doc:
        a = self.doc["accounts"].get(account)
        if a is None:
            raise errors.not_found("Account", "We can't find an AWS account with the AccountId that you specified.")
        return a  # type: ignore[no-any-return]

    def require_policy(self, policy_id: str) -> Doc:
        p = self.doc["policies"].get(policy_id)
        if p is None:
            raise errors.not_found("Policy", "We can't find a policy with the PolicyId that you specified.")
        return p  # type: ignore[no-any-return]

    def require_target(self, target: str) -> str:
        if not self.has_target(target):
            raise errors.not_found("Target", "We can't find a root, OU, account, or policy with the TargetId.")
        return target

    def require_type(self, policy_type: str) -> str:
        if policy_type not in SUPPORTED_TYPES:
            raise errors.policy_type_not_available(policy_type)
        return policy_type

    # --- transitions ----------------------------------------------------------------------------------

    def _attach_full_access(self, target: str) -> None:
        for policy_type, (pid, *_rest) in FULL_ACCESS.items():
            if self.enabled(policy_type):
                ids = self.doc["attachments"].setdefault(target, [])
                if pid not in ids:
                    ids.append(pid)

    def create_ou(self, parent: str, name: str, ou_id: str | None = None) -> str:
        self.require_parent(parent)
        if any(o["name"] == name and o["parent"] == parent for o in self.doc["ous"].values()):
            raise errors.duplicate("OrganizationalUnit", "An OU with the same name already exists.")
        if parent != self.root_id and self.depth(parent) >= MAX_OU_DEPTH:
            raise errors.constraint(
                "OU_DEPTH_LIMIT_EXCEEDED", "You attempted to create an OU tree that is too many levels deep."
            )
        ou_id = ou_id or f"ou-{self.root_id[2:]}-{_rand(8)}"
        self.doc["ous"][ou_id] = {"id": ou_id, "name": name, "parent": parent}
        self._attach_full_access(ou_id)
        return ou_id

    def add_account(self, account: str, name: str, email: str, parent: str | None = None) -> None:
        if account in self.doc["accounts"]:
            raise errors.already_in_organization()
        self.doc["accounts"][account] = {
            "id": account,
            "name": name,
            "email": email,
            "parent": self.require_parent(parent or self.root_id),
            "joined_method": "CREATED",
            "joined": time.time(),
            "status": "ACTIVE",
        }
        self._attach_full_access(account)

    def email_taken(self, email: str) -> bool:
        return any(a["email"].lower() == email.lower() for a in self.doc["accounts"].values())

    def move_account(self, account: str, source: str, destination: str) -> None:
        a = self.require_account(account)
        if source != self.root_id and source not in self.doc["ous"]:
            raise errors.not_found("SourceParent", "We can't find a source root or OU with the ParentId.")
        if destination != self.root_id and destination not in self.doc["ous"]:
            raise errors.not_found("DestinationParent", "We can't find a destination root or OU with the ParentId.")
        if a["parent"] != source:
            raise errors.not_found("Account", "We can't find an AWS account with the AccountId in the source parent.")
        if source == destination:
            raise errors.duplicate("Account", "That account is already present in the specified destination.")
        a["parent"] = destination

    def check_content(self, policy_type: str, content: str) -> None:
        if len(content) > MAX_CONTENT:
            raise errors.constraint(
                "POLICY_CONTENT_LIMIT_EXCEEDED",
                f"You attempted to create a policy larger than the maximum size ({MAX_CONTENT} characters).",
            )
        try:
            check_policy(content, POLICY_KINDS[policy_type])  # parsed and compiled, as the authorizer will
        except PolicyParseError as exc:
            raise errors.malformed_policy(f"The provided policy document does not meet the requirements of "
                                          f"the specified policy type. {exc}") from None

    def create_policy(self, policy_type: str, name: str, description: str, content: str) -> str:
        self.require_type(policy_type)
        if any(p["name"] == name and p["type"] == policy_type for p in self.doc["policies"].values()):
            raise errors.duplicate("Policy", "A policy with the same name already exists.")
        self.check_content(policy_type, content)
        policy_id = f"p-{_rand(8)}"
        self.doc["policies"][policy_id] = {
            "id": policy_id,
            "name": name,
            "description": description,
            "type": policy_type,
            "content": content,
            "aws_managed": False,
        }
        return policy_id

    def update_policy(self, policy_id: str, name: str | None, description: str | None, content: str | None) -> None:
        p = self.require_policy(policy_id)
        if p.get("aws_managed"):
            raise errors.access_denied("You can't modify an AWS managed policy.")
        if name is not None:
            if any(q["name"] == name and q["type"] == p["type"] and q["id"] != policy_id
                   for q in self.doc["policies"].values()):
                raise errors.duplicate("Policy", "A policy with the same name already exists.")
            p["name"] = name
        if description is not None:
            p["description"] = description
        if content is not None:
            self.check_content(p["type"], content)
            p["content"] = content

    def delete_policy(self, policy_id: str) -> None:
        p = self.require_policy(policy_id)
        if p.get("aws_managed"):
            raise errors.access_denied("You can't delete an AWS managed policy.")
        if self.targets_of(policy_id):
            raise errors.policy_in_use()
        del self.doc["policies"][policy_id]

    def attach(self, policy_id: str, target: str) -> None:
        p = self.require_policy(policy_id)
        self.require_target(target)
        if not self.enabled(p["type"]):
            raise errors.policy_type_not_enabled(p["type"])
        ids = self.doc["attachments"].setdefault(target, [])
        if policy_id in ids:
            raise errors.duplicate("PolicyAttachment", "The selected policy is already attached to the target.")
        if len(self.attached(target, p["type"])) >= MAX_PER_TARGET:
            raise errors.constraint(
                "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                "You attempted to attach more policies of this type to the entity than are allowed.",
            )
        ids.append(policy_id)

    def detach(self, policy_id: str, target: str) -> None:
        p = self.require_policy(policy_id)
        self.require_target(target)
        ids = self.doc["attachments"].get(target, [])
        if policy_id not in ids:
            raise errors.policy_not_attached()
        if policy_id == FULL_ACCESS[RCP][0]:
            raise errors.constraint(
                "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED", "You can't detach the RCPFullAWSAccess policy."
            )
        if p["type"] == SCP and len(self.attached(target, SCP)) <= 1:
            raise errors.constraint(
                "MIN_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
                "You attempted to detach a policy from an entity that would leave it with fewer than the "
                "minimum number of policies of that type (1).",
            )
        ids.remove(policy_id)

    def all_targets(self) -> list[str]:
        return [self.root_id, *self.doc["ous"], *self.doc["accounts"]]

    def enable_type(self, root: str, policy_type: str) -> None:
        if root != self.root_id:
            raise errors.not_found("Root", "We can't find a root with the RootId that you specified.")
        self.require_type(policy_type)
        if self.doc["org"]["feature_set"] != "ALL":
            raise errors.constraint(
                "ORGANIZATION_NOT_IN_ALL_FEATURES_MODE", "The organization must have all features enabled."
            )
        if self.enabled(policy_type):
            raise errors.policy_type_already_enabled()
        self.doc["root"]["policy_types"][policy_type] = "ENABLED"
        for target in self.all_targets():
            self._attach_full_access(target)

    def disable_type(self, root: str, policy_type: str) -> None:
        if root != self.root_id:
            raise errors.not_found("Root", "We can't find a root with the RootId that you specified.")
        self.require_type(policy_type)
        if not self.enabled(policy_type):
            raise errors.policy_type_not_enabled(policy_type)
        del self.doc["root"]["policy_types"][policy_type]
        for target, ids in self.doc["attachments"].items():
            self.doc["attachments"][target] = [p for p in ids if self.doc["policies"][p]["type"] != policy_type]

    def register_delegated_admin(self, account: str) -> None:
        self.require_account(account)
        if account == self.management:
            raise errors.constraint(
                "CANNOT_REGISTER_MASTER_AS_DELEGATED_ADMINISTRATOR",
                "You can't register the management account as a delegated administrator.",
            )
        admins = self.doc.setdefault("delegated_admins", [])
        if account not in admins:
            admins.append(account)
