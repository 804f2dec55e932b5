"""Virtual MFA devices (TOTP) and console login profiles.

MFA: CreateVirtualMFADevice, EnableMFADevice (two consecutive codes), DeactivateMFADevice,
ListMFADevices, ListVirtualMFADevices, DeleteVirtualMFADevice, and ``check_code`` which STS uses for
``SerialNumber`` + ``TokenCode``. A code is accepted once only: the device remembers the last time step used.

Login profiles: CreateLoginProfile, GetLoginProfile, DeleteLoginProfile. The password is hashed with
scrypt (``auth/passwords.py``) off the event loop, and never stored, logged or returned in clear.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from perimeterdb.auth import passwords, totp
from perimeterdb.auth.secretbox import UnsealError
from perimeterdb.iam import errors
from perimeterdb.iam.call import Handler, QueryCall, paginate
from perimeterdb.iam.users import no_such_user, user_arn
from perimeterdb.world.identities import (
    MFA_DEVICES,
    USERS,
    Change,
    IdentityStore,
    Record,
    account_key,
    global_key,
)

MAX_MFA_PER_USER = 8
MIN_PASSWORD_LENGTH = 8

log = logging.getLogger(__name__)


def _seed(store: IdentityStore, device: Record) -> bytes | None:
    """The device's seed; None when it does not open (a damaged record): no code then matches, and the
    caller answers as for a wrong code, never a 500."""
    try:
        return bytes.fromhex(store.box.open(device["seed"], context=device["serial"]))
    except (UnsealError, ValueError) as exc:
        log.error("MFA device %s: its seed does not open (%s); every code is refused", device["serial"], exc)
        return None


def _no_such_device(serial: str) -> errors.ApiError:
    return errors.no_such_entity(f"VirtualMFADevice with serial number {serial} doesn't exist.")


async def create_virtual_mfa_device(call: QueryCall) -> dict[str, Any]:
    name = call.params["VirtualMFADeviceName"]
    path = call.params.get("Path") or "/"
    serial = call.arn("mfa", path, name)
    await call.authorize("iam:CreateVirtualMFADevice", serial)
    seed = totp.new_seed()
    record: Record = {
        "serial": serial,
        "account": call.account,
        "name": name,
        "seed": call.store.box.seal(seed.hex(), context=serial),
        "user": None,
        "enabled": None,
        "created": time.time(),
        "last_step": 0,
        "tags": call.params.get("Tags", []),
    }
    key = global_key(MFA_DEVICES, serial)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        if values[0] is not None:
            raise errors.entity_already_exists("MFADevice entity at the same path and name already exists.")
        return [(key, record)], None

    await call.store.write([key], decide)
    return {
        "VirtualMFADevice": {
            "SerialNumber": serial,
            "Base32StringSeed": totp.seed_base32(seed).encode(),
        }
    }


def _two_codes_step(seed: bytes, code1: str, code2: str, now: float) -> int | None:
    """The step of the second of two consecutive codes, looking back a few minutes as IAM does."""
    current = totp.time_step(now)
    for step in range(current - 10, current + 2):
        if totp.hotp(seed, step) == code1 and totp.hotp(seed, step + 1) == code2:
            return step + 1
    return None


async def enable_mfa_device(call: QueryCall) -> None:
    name = call.params["UserName"]
    serial = call.params["SerialNumber"]
    await call.authorize("iam:EnableMFADevice", await user_arn(call, name))
    device = await call.store.get_global(MFA_DEVICES, serial)
    if device is None or device["account"] != call.account:
        raise _no_such_device(serial)
    seed = _seed(call.store, device)
    step = (
        _two_codes_step(seed, call.params["AuthenticationCode1"], call.params["AuthenticationCode2"], call.now)
        if seed is not None
        else None
    )
    if step is None:
        raise errors.invalid_authentication_code("Authentication code for device is not valid.")
    ukey = account_key(USERS, call.account, name)
    dkey = global_key(MFA_DEVICES, serial)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        user, dev = values
        if user is None:
            raise no_such_user(name)
        if dev is None:
            raise _no_such_device(serial)
        if dev.get("user"):
            raise errors.entity_already_exists("MFA Device is already in use.")
        if len(user.get("mfa", [])) >= MAX_MFA_PER_USER:
            raise errors.limit_exceeded(f"Cannot exceed quota for MFADevicesPerUser: {MAX_MFA_PER_USER}")
        dev.update(user=user["name"], enabled=call.now, last_step=step)
        user["mfa"] = [*user.get("mfa", []), serial]
        return [(ukey, user), (dkey, dev)], None

    await call.store.write([ukey, dkey], decide)
    return None


async def deactivate_mfa_device(call: QueryCall) -> None:
    name = await call.caller_user_name(call.params.get("UserName"))
    serial = call.params["SerialNumber"]
    await call.authorize("iam:DeactivateMFADevice", await user_arn(call, name))
    ukey = account_key(USERS, call.account, name)
    dkey = global_key(MFA_DEVICES, serial)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        user, dev = values
        if user is None:
            raise no_such_user(name)
        if serial not in user.get("mfa", []):
            raise errors.no_such_entity(f"MFA Device with serial number {serial} does not exist.")
        user["mfa"] = [s for s in user["mfa"] if s != serial]
        changes: list[Change] = [(ukey, user)]
        if dev is not None:
            dev.update(user=None, enabled=None)
            changes.append((dkey, dev))
        return changes, None

    await call.store.write([ukey, dkey], decide)
    return None


async def list_mfa_devices(call: QueryCall) -> dict[str, Any]:
    name = await call.caller_user_name(call.params.get("UserName"))
    await call.authorize("iam:ListMFADevices", await user_arn(call, name))
    user = await call.store.get_user(call.account, name)
    if user is None:
        raise no_such_user(name)
    devices = []
    for serial in user.get("mfa", []):
        dev = await call.store.get_global(MFA_DEVICES, serial)
        if dev is not None:
            devices.append({"UserName": user["name"], "SerialNumber": serial, "EnableDate": dev["enabled"]})
    return paginate(devices, call.params, "MFADevices")


async def list_virtual_mfa_devices(call: QueryCall) -> dict[str, Any]:
    await call.authorize("iam:ListVirtualMFADevices", f"arn:aws:iam::{call.account}:mfa/")
    wanted = call.params.get("AssignmentStatus") or "Any"
    out = []
    for dev in await call.store.list_global(MFA_DEVICES):
        if dev["account"] != call.account:
            continue
        assigned = dev.get("user") is not None
        if (wanted == "Assigned" and not assigned) or (wanted == "Unassigned" and assigned):
            continue
        item: dict[str, Any] = {"SerialNumber": dev["serial"]}
        if assigned:
            user = await call.store.get_user(call.account, dev["user"])
            if user is not None:
                item["User"] = {k: v for k, v in _user_brief(user).items()}
            item["EnableDate"] = dev["enabled"]
        out.append(item)
    return paginate(out, call.params, "VirtualMFADevices")


def _user_brief(user: Record) -> dict[str, Any]:
    from perimeterdb.iam.users import user_shape

    return user_shape(user, full=False)


async def delete_virtual_mfa_device(call: QueryCall) -> None:
    serial = call.params["SerialNumber"]
    await call.authorize("iam:DeleteVirtualMFADevice", serial)
    dkey = global_key(MFA_DEVICES, serial)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        dev = values[0]
        if dev is None or dev["account"] != call.account:
            raise _no_such_device(serial)
        if dev.get("user"):
            raise errors.delete_conflict("MFA Device is in use and cannot be deleted.")
        return [(dkey, None)], None

    await call.store.write([dkey], decide)
    return None


def check_token_code_format(code: str) -> None:
    """STS's ``TokenCode`` is six ASCII digits (the model's pattern ``[\\d]*`` is Java's, ASCII): anything
    else, Arabic-Indic or full-width digits included, is a ValidationError, never a server error."""
    if not (code.isascii() and code.isdigit()):
        raise errors.validation_error(
            f"1 validation error detected: Value '{code}' at 'tokenCode' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\d]*"
        )


def mfa_failed() -> errors.ApiError:
    """AWS's answer to a wrong, stale or already used code (STS: AccessDenied, 403)."""
    return errors.access_denied("MultiFactorAuthentication failed with invalid MFA one time pass code. ")


async def check_code(
    store: IdentityStore, account: str, user_name: str | None, serial: str, code: str, now: float
) -> bool:
    """STS's MFA check: the device is enabled for this user and the code is current and unused.

    A code is accepted once: the device's last accepted time step is read, compared and advanced in one
    atomic read-decide-write, so concurrent calls with one code (in several server processes) get exactly
    one success, and a code at or before the last accepted step is refused."""
    if not user_name or not (code.isascii() and code.isdigit()):
        return False
    device = await store.get_global(MFA_DEVICES, serial)
    if (
        device is None
        or device["account"] != account
        or (device.get("user") or "").lower() != user_name.lower()
    ):
        return False
    seed = _seed(store, device)
    if seed is None:
        return False
    step = totp.matching_step(seed, code, now)
    if step is None or step <= device.get("last_step", 0):
        return False
    key = global_key(MFA_DEVICES, serial)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], bool]:
        dev = values[0]
        if dev is None or step <= dev.get("last_step", 0):
            return [], False
        dev["last_step"] = step
        return [(key, dev)], True

    return await store.write([key], decide)


# --- login profiles --------------------------------------------------------------------------------------


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise errors.ApiError(
            "PasswordPolicyViolation",
            f"Password should have a minimum length of {MIN_PASSWORD_LENGTH}",
            namespace="query",
        )


async def create_login_profile(call: QueryCall) -> dict[str, Any]:
    name = await call.caller_user_name(call.params.get("UserName"))
    await call.authorize("iam:CreateLoginProfile", await user_arn(call, name))
    password = call.params.get("Password") or ""
    _check_password(password)
    hashed = await asyncio.to_thread(passwords.hash_password, password)
    reset = bool(call.params.get("PasswordResetRequired"))
    ukey = account_key(USERS, call.account, name)
    now = time.time()

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], Record]:
        user = values[0]
        if user is None:
            raise no_such_user(name)
        if user.get("login"):
            raise errors.entity_already_exists(f"Login Profile for user {user['name']} already exists.")
        user["login"] = {"hash": hashed, "created": now, "reset_required": reset}
        if call.principal.break_glass:  # made during a break-glass session: listed for the review
            user["login"]["break_glass"] = {
                "origin_session": call.principal.break_glass_origin or call.principal.access_key_id,
                "session": call.principal.access_key_id,
                "expires": call.principal.expires_at,
            }
        return [(ukey, user)], user

    user = await call.store.write([ukey], decide)
    return {"LoginProfile": {"UserName": user["name"], "CreateDate": now, "PasswordResetRequired": reset}}


async def get_login_profile(call: QueryCall) -> dict[str, Any]:
    name = await call.caller_user_name(call.params.get("UserName"))
    await call.authorize("iam:GetLoginProfile", await user_arn(call, name))
    user = await call.store.get_user(call.account, name)
    if user is None:
        raise no_such_user(name)
    login = user.get("login")
    if not login:
        raise errors.no_such_entity(f"Login Profile for User {user['name']} cannot be found.")
    return {
        "LoginProfile": {
            "UserName": user["name"],
            "CreateDate": login["created"],
            "PasswordResetRequired": login["reset_required"],
        }
    }


async def delete_login_profile(call: QueryCall) -> None:
    name = await call.caller_user_name(call.params.get("UserName"))
    await call.authorize("iam:DeleteLoginProfile", await user_arn(call, name))
    ukey = account_key(USERS, call.account, name)

    def decide(values: list[Record | None]) -> tuple[Sequence[Change], None]:
        user = values[0]
        if user is None:
            raise no_such_user(name)
        if not user.get("login"):
            raise errors.no_such_entity(f"Login Profile for User {user['name']} cannot be found.")
        user["login"] = None
        return [(ukey, user)], None

    await call.store.write([ukey], decide)
    return None


OPERATIONS: dict[str, Handler] = {
    "CreateVirtualMFADevice": create_virtual_mfa_device,
    "EnableMFADevice": enable_mfa_device,
    "DeactivateMFADevice": deactivate_mfa_device,
    "ListMFADevices": list_mfa_devices,
    "ListVirtualMFADevices": list_virtual_mfa_devices,
    "DeleteVirtualMFADevice": delete_virtual_mfa_device,
    "CreateLoginProfile": create_login_profile,
    "GetLoginProfile": get_login_profile,
    "DeleteLoginProfile": delete_login_profile,
}
