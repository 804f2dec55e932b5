import pytest

from perimeterdb.policy import ContextKeys, Decision, RequestContext, Response, access_denied_message
from perimeterdb.policy.explain import POLICY_TYPE_NAMES
from tests.policy.conftest import ACCOUNT, TABLE


def test_every_type_has_a_name(alice) -> None:
    c = RequestContext(alice, "dynamodb:GetItem", TABLE, ACCOUNT, ContextKeys())
    for kind in POLICY_TYPE_NAMES:
        msg = access_denied_message(c, Response(Decision.IMPLICIT_DENY, denied_by=kind))
        assert msg.endswith("allows the dynamodb:GetItem action")
    with pytest.raises(ValueError):
        access_denied_message(c, Response(Decision.ALLOW))
