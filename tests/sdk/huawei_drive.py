"""Drives the keysmith-conformance Huawei APIG server with the official SDK
(huaweicloudsdkapig 3.1.219): every operation keysmith uses, through the
SDK's own signer, request and response models, and error handling. Fails
(exit 1, traceback) at the first answer the SDK does not take as the real
API's; prints a JSON summary for the Rust test.

    huawei_drive.py drive ENDPOINT AK SK PROJECT INSTANCE
    huawei_drive.py auth  ENDPOINT AK SK PROJECT INSTANCE
"""

import datetime
import json
import sys
import urllib.request

import huaweicloudsdkcore.signer.signer as sdk_signer
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions import exceptions
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkapig.v2 import (
    ApigClient, AppCreate, AppResetCreate, BaseSignature,
    CreateAnAppV2Request, CreateSignatureKeyV2Request, DeleteAppV2Request,
    DeleteSignatureKeyV2Request, ListAppsV2Request, ListSignatureKeysV2Request,
    ResettingAppSecretV2Request, ShowDetailsOfAppV2Request,
    ShowDetailsOfInstanceV2Request, UpdateAppV2Request,
    UpdateSignatureKeyV2Request,
)


def client(endpoint, ak, sk, project):
    config = HttpConfig.get_default_config()
    config.timeout = (5, 10)
    return (ApigClient.new_builder()
            .with_http_config(config)
            .with_credentials(BasicCredentials(ak, sk, project))
            .with_endpoints([endpoint])
            .build())


def refused(call, status, code):
    """Runs call, which must raise the SDK's error with this status and code."""
    try:
        call()
    except exceptions.ClientRequestException as error:
        assert error.status_code == status, (error.status_code, status, str(error))
        assert error.error_code == code, (error.error_code, code, str(error))
        return {"status": error.status_code, "code": error.error_code, "msg": error.error_msg}
    raise AssertionError(f"expected {status} {code}, the call succeeded")


def is_time(value):
    """The SDK parses times with dateutil where installed; the pinned venv has
    none, so the SDK hands back the string: it must be ISO 8601."""
    if isinstance(value, datetime.datetime):
        return True
    return isinstance(value, str) and datetime.datetime.fromisoformat(value).tzinfo is not None


def drive_apps(api, instance):
    created = []
    for i in range(7):
        body = AppCreate(name=f"sdk_app_{i}", remark=f"app {i}")
        if i % 2 == 0:
            body.app_key = f"sdkkey{i:04d}"
            body.app_secret = f"sdkSecret-{i:04d}!"
        app = api.create_an_app_v2(CreateAnAppV2Request(instance_id=instance, body=body))
        assert app.status_code == 201 and len(app.id) == 32, app
        assert app.name == body.name and app.remark == body.remark and app.status == 1
        assert app.creator == "USER" and app.app_type == "apig"
        assert is_time(app.register_time) and is_time(app.update_time), app.register_time
        if i % 2 == 0:
            assert app.app_key == body.app_key and app.app_secret == body.app_secret
        else:
            assert len(app.app_key) == 32 and len(app.app_secret) >= 8
        created.append(app)
    errors = {
        "duplicate_name": refused(lambda: api.create_an_app_v2(CreateAnAppV2Request(
            instance_id=instance, body=AppCreate(name="sdk_app_0"))), 400, "APIG.3203"),
        "duplicate_key": refused(lambda: api.create_an_app_v2(CreateAnAppV2Request(
            instance_id=instance, body=AppCreate(name="sdk_other", app_key="sdkkey0000"))), 400, "APIG.3310"),
        "bad_name": refused(lambda: api.create_an_app_v2(CreateAnAppV2Request(
            instance_id=instance, body=AppCreate(name="1bad"))), 400, "APIG.2011"),
    }
    pages, names, offset = [], [], 0
    while True:
        page = api.list_apps_v2(ListAppsV2Request(instance_id=instance, offset=offset, limit=3))
        assert page.total == 7, page.total
        pages.append(page.size)
        names += [a.name for a in page.apps]
        assert all(a.app_key and a.app_secret and a.bind_num == 0 for a in page.apps)
        offset += page.size
        if offset >= page.total:
            break
    assert pages == [3, 3, 1] and sorted(names) == sorted(a.name for a in created), (pages, names)
    found = api.list_apps_v2(ListAppsV2Request(
        instance_id=instance, name="sdk_app_1", precise_search="name"))
    assert found.total == 1 and found.apps[0].id == created[1].id
    return created, errors, pages


def drive_app_changes(api, instance, app):
    shown = api.show_details_of_app_v2(ShowDetailsOfAppV2Request(instance_id=instance, app_id=app.id))
    assert shown.id == app.id and shown.app_key == app.app_key
    updated = api.update_app_v2(UpdateAppV2Request(
        instance_id=instance, app_id=app.id, body=AppCreate(name="sdk_app_renamed", remark="renamed")))
    assert updated.name == "sdk_app_renamed" and updated.remark == "renamed"
    assert updated.app_key == app.app_key
    rekeyed = api.update_app_v2(UpdateAppV2Request(instance_id=instance, app_id=app.id, body=AppCreate(
        name="sdk_app_renamed", app_key="sdkNewKey01", app_secret="sdkNewSecret01")))
    assert rekeyed.app_key == "sdkNewKey01" and rekeyed.app_secret == "sdkNewSecret01"
    reset = api.resetting_app_secret_v2(ResettingAppSecretV2Request(
        instance_id=instance, app_id=app.id, body=AppResetCreate(app_secret="sdkResetSecret1")))
    assert reset.app_secret == "sdkResetSecret1" and reset.app_key == "sdkNewKey01"
    generated = api.resetting_app_secret_v2(ResettingAppSecretV2Request(
        instance_id=instance, app_id=app.id, body=AppResetCreate()))
    assert generated.app_secret not in (None, "sdkResetSecret1")
    api.delete_app_v2(DeleteAppV2Request(instance_id=instance, app_id=app.id))
    return refused(lambda: api.show_details_of_app_v2(ShowDetailsOfAppV2Request(
        instance_id=instance, app_id=app.id)), 404, "APIG.3004")


def create_sign(api, instance, **fields):
    body = BaseSignature(**fields)
    return api.create_signature_key_v2(CreateSignatureKeyV2Request(instance_id=instance, body=body))


def drive_signs(api, instance):
    hmac = create_sign(api, instance, name="sdk_sig_hmac", sign_type="hmac",
                       sign_key="sdkSignKey01", sign_secret="sdkSignSecret0001")
    assert hmac.status_code == 201 and len(hmac.id) == 32 and hmac.sign_key == "sdkSignKey01"
    assert hmac.sign_secret == "sdkSignSecret0001" and is_time(hmac.create_time)
    aes = create_sign(api, instance, name="sdk_sig_aes", sign_type="aes", sign_algorithm="aes-256-cfb",
                      sign_key="A" * 32, sign_secret="B" * 16)
    assert aes.sign_algorithm == "aes-256-cfb" and aes.sign_type == "aes"
    basic = create_sign(api, instance, name="sdk_sig_basic", sign_type="basic")
    assert basic.sign_key[0].isalpha() and 4 <= len(basic.sign_key) <= 32 and basic.sign_secret
    errors = {
        "duplicate_sign": refused(lambda: create_sign(api, instance, name="sdk_sig_hmac"), 400, "APIG.3207"),
        "bad_sign_key": refused(lambda: create_sign(api, instance, name="sdk_sig_bad", sign_type="hmac",
                                                    sign_key="short"), 400, "APIG.2011"),
    }
    listed, offset = [], 0
    while True:
        page = api.list_signature_keys_v2(ListSignatureKeysV2Request(instance_id=instance, offset=offset, limit=2))
        listed += [s.name for s in page.signs]
        offset += page.size
        if offset >= page.total:
            break
    assert sorted(listed) == ["sdk_sig_aes", "sdk_sig_basic", "sdk_sig_hmac"], listed
    updated = api.update_signature_key_v2(UpdateSignatureKeyV2Request(
        instance_id=instance, sign_id=hmac.id, body=BaseSignature(
            name="sdk_sig_hmac2", sign_type="hmac", sign_key="sdkSignKey02", sign_secret="sdkSignSecret0002")))
    assert updated.name == "sdk_sig_hmac2" and updated.sign_key == "sdkSignKey02"
    api.delete_signature_key_v2(DeleteSignatureKeyV2Request(instance_id=instance, sign_id=hmac.id))
    errors["sign_gone"] = refused(lambda: api.delete_signature_key_v2(DeleteSignatureKeyV2Request(
        instance_id=instance, sign_id=hmac.id)), 404, "APIG.3017")
    return errors


def queue_fault(endpoint, operation, kind):
    """The conformance server's control route (not part of Huawei's API)."""
    body = json.dumps({"operation": operation, "kind": kind}).encode()
    request = urllib.request.Request(endpoint + "/_conformance/faults", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def drive_faults(endpoint, api, instance):
    """The fault answers parse as the SDK's errors: throttling and a 500."""
    listing = ListAppsV2Request(instance_id=instance)
    queue_fault(endpoint, "ListAppsV2", "throttled")
    # The SDK's urllib3 retry policy takes any 429 itself and raises with
    # error_code "429" without reading the body (exception_handler.py,
    # process_retry_error): the body's APIGW.0308 never reaches SDK callers.
    throttled = refused(lambda: api.list_apps_v2(listing), 429, "429")
    queue_fault(endpoint, "ListAppsV2", "unavailable")
    try:
        api.list_apps_v2(listing)
        raise AssertionError("expected a 500")
    except exceptions.ServerResponseException as error:
        assert error.status_code == 500 and error.error_code == "APIG.9999", str(error)
        unavailable = {"status": error.status_code, "code": error.error_code, "msg": error.error_msg}
    return {"throttled": throttled, "unavailable": unavailable}


def drive(endpoint, ak, sk, project, instance):
    api = client(endpoint, ak, sk, project)
    shown = api.show_details_of_instance_v2(ShowDetailsOfInstanceV2Request(instance_id=instance))
    assert shown.id == instance and shown.project_id == project, shown
    created, errors, pages = drive_apps(api, instance)
    errors["app_gone"] = drive_app_changes(api, instance, created[0])
    errors.update(drive_signs(api, instance))
    errors["no_instance"] = refused(lambda: api.list_apps_v2(ListAppsV2Request(
        instance_id="f" * 32)), 404, "APIG.3030")
    errors.update(drive_faults(endpoint, api, instance))
    return {"apps_created": len(created), "app_pages": pages, "errors": errors}


class Skewed(datetime.datetime):
    """The signer's clock, moved by `skew` (the SDK reads datetime.utcnow())."""
    skew = datetime.timedelta(0)

    @classmethod
    def utcnow(cls):
        return datetime.datetime.utcnow() + cls.skew


def auth(endpoint, ak, sk, project, instance):
    show = ShowDetailsOfInstanceV2Request(instance_id=instance)
    out = {
        "wrong_secret": refused(lambda: client(endpoint, ak, sk + "x", project)
                                .show_details_of_instance_v2(show), 401, "APIGW.0301"),
        "unknown_key": refused(lambda: client(endpoint, "UNKNOWNACCESSKEY", sk, project)
                               .show_details_of_instance_v2(show), 401, "APIGW.0301"),
    }
    sdk_signer.datetime = Skewed
    Skewed.skew = datetime.timedelta(minutes=-20)
    out["stale_date"] = refused(lambda: client(endpoint, ak, sk, project)
                                .show_details_of_instance_v2(show), 401, "APIGW.0301")
    Skewed.skew = datetime.timedelta(minutes=16)
    out["future_date"] = refused(lambda: client(endpoint, ak, sk, project)
                                 .show_details_of_instance_v2(show), 401, "APIGW.0301")
    Skewed.skew = datetime.timedelta(minutes=-10)
    client(endpoint, ak, sk, project).show_details_of_instance_v2(show)
    out["ten_minutes_skew"] = "accepted"
    return out


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    result = drive(*args) if mode == "drive" else auth(*args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
