"""Drives the Alibaba conformance server with the official SDK
(alibabacloud-cloudapi20160714, default Config: V3 ACS3-HMAC-SHA256).

usage: alibaba_drive.py MODE HOST:PORT ACCESS_KEY_ID ACCESS_KEY_SECRET REGION
MODE drive: every action keysmith uses, paging and the gateway's refusals.
MODE auth:  a wrong signature, a stale timestamp and an unknown AccessKeyId.
Fails (non-zero exit) on any unexpected answer; prints a JSON summary.
"""
import json
import sys

from alibabacloud_cloudapi20160714 import models
from alibabacloud_cloudapi20160714.client import Client
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.utils import Utils

MODE, HOST, AK, SK, REGION = sys.argv[1:6]


def client(ak=AK, sk=SK):
    config = utils_models.Config(
        access_key_id=ak, access_key_secret=sk, endpoint=HOST,
        protocol='http', region_id=REGION)
    return Client(config)


def refused(call, code, status):
    try:
        call()
    except Exception as error:  # the SDK's ClientException / ServerException
        got = (getattr(error, 'code', None), getattr(error, 'status_code', None))
        assert got == (code, status), f'expected {code}/{status}, got {got}: {error}'
        return code
    raise AssertionError(f'expected {code}, the call succeeded')


def pairs(api, app_id):
    body = api.describe_app_securities(
        models.DescribeAppSecuritiesRequest(app_id=app_id)).body
    assert body.request_id
    return [(p.app_key, p.app_secret) for p in body.app_securitys.app_security]


def app_named(api, app_id):
    body = api.describe_app_attributes(
        models.DescribeAppAttributesRequest(app_id=app_id)).body
    return [(a.app_name, a.description) for a in body.apps.app_attribute]


def drive_apps(api, summary):
    created = api.create_app(models.CreateAppRequest(
        app_name='orders_one', description='first app',
        app_key='orders-key-0001', app_secret='Secret_0001_abcdefgh')).body
    assert created.request_id and isinstance(created.app_id, int), created
    app_id = created.app_id
    assert pairs(api, app_id) == [('orders-key-0001', 'Secret_0001_abcdefgh')]
    generated = api.create_app(models.CreateAppRequest(app_name='generated_keys')).body
    [(key, secret)] = pairs(api, generated.app_id)
    assert key.isdigit() and len(secret) == 32, (key, len(secret))
    api.modify_app(models.ModifyAppRequest(
        app_id=app_id, app_name='orders_two', description='changed'))
    assert app_named(api, app_id) == [('orders_two', 'changed')]
    api.reset_app_secret(models.ResetAppSecretRequest(
        app_key='orders-key-0001', new_app_key='orders-key-0002',
        new_app_secret='Secret_0002_abcdefgh'))
    assert pairs(api, app_id) == [('orders-key-0002', 'Secret_0002_abcdefgh')]
    api.create_app_key(models.CreateAppKeyRequest(
        app_id=str(app_id), app_key='orders-key-0003', app_secret='Secret_0003_abcdefgh'))
    assert len(pairs(api, app_id)) == 2
    refused(lambda: api.create_app_key(models.CreateAppKeyRequest(
        app_id=str(generated.app_id), app_key='orders-key-0003')), 'RepeatedAppKey', 400)
    api.delete_app_key(models.DeleteAppKeyRequest(app_id=str(app_id), app_key='orders-key-0002'))
    assert pairs(api, app_id) == [('orders-key-0003', 'Secret_0003_abcdefgh')]
    summary['apps'] = 'create, modify, reset, add and remove a key pair'
    return app_id


def drive_paging(api, summary):
    for n in range(12):
        api.create_app(models.CreateAppRequest(app_name=f'paged_app_{n:02}'))
    seen = []
    for page in (1, 2, 3):
        body = api.describe_app_attributes(
            models.DescribeAppAttributesRequest(page_number=page, page_size=5)).body
        assert body.total_count == 14 and body.page_number == page and body.page_size == 5
        seen += [a.app_id for a in body.apps.app_attribute]
    assert len(seen) == 14 and len(set(seen)) == 14, seen
    summary['pages'] = 3


def drive_refusals(api, summary):
    summary['refusals'] = [
        refused(lambda: api.create_app(models.CreateAppRequest(app_name='orders_two')),
                'RepeatedAppName', 400),
        refused(lambda: api.create_app(models.CreateAppRequest(app_name='abc')),
                'InvalidAppName', 400),
        refused(lambda: api.create_app(models.CreateAppRequest(
            app_name='dup_key_app', app_key='orders-key-0003')), 'RepeatedAppKey', 400),
        refused(lambda: api.delete_app(models.DeleteAppRequest(app_id=1)), 'NotFoundApp', 400),
    ]


def drive_signatures(api, summary):
    created = api.create_signature(models.CreateSignatureRequest(
        signature_name='backend_one', signature_key='sigkey_one',
        signature_secret='Sig_secret_0001')).body
    assert created.signature_id and created.signature_name == 'backend_one', created
    sid = created.signature_id
    refused(lambda: api.create_signature(models.CreateSignatureRequest(
        signature_name='backend_one', signature_key='sigkey_two',
        signature_secret='Sig_secret_0002')), 'RepeatedSignatureName', 400)
    api.modify_signature(models.ModifySignatureRequest(
        signature_id=sid, signature_name='backend_two', signature_key='sigkey_two',
        signature_secret='Sig_secret_0002'))
    body = api.describe_signatures(models.DescribeSignaturesRequest(
        signature_name='backend_two', page_number=1, page_size=10)).body
    [info] = body.signature_infos.signature_info
    assert (info.signature_id, info.signature_key, info.signature_secret) == (
        sid, 'sigkey_two', 'Sig_secret_0002'), info
    assert body.total_count == 1 and info.region_id == REGION
    api.delete_signature(models.DeleteSignatureRequest(signature_id=sid))
    body = api.describe_signatures(models.DescribeSignaturesRequest()).body
    assert body.total_count == 0
    summary['signatures'] = 'create, modify, describe, delete'


def drive():
    api = client()
    summary = {}
    app_id = drive_apps(api, summary)
    drive_paging(api, summary)
    drive_refusals(api, summary)
    drive_signatures(api, summary)
    api.delete_app(models.DeleteAppRequest(app_id=app_id))
    assert app_named(api, app_id) == []
    return summary


def auth():
    listing = models.DescribeAppAttributesRequest(page_size=1)
    codes = {
        'wrong_signature': refused(
            lambda: client(sk=SK + 'x').describe_app_attributes(listing),
            'SignatureDoesNotMatch', 400),
        'unknown_key': refused(
            lambda: client(ak='LTAI-unknown-key').describe_app_attributes(listing),
            'InvalidAccessKeyId.NotFound', 404),
    }
    fresh = Utils.get_timestamp
    Utils.get_timestamp = staticmethod(lambda: '2020-01-01T00:00:00Z')
    try:
        codes['stale_timestamp'] = refused(
            lambda: client().describe_app_attributes(listing),
            'InvalidTimeStamp.Expired', 400)
    finally:
        Utils.get_timestamp = fresh
    client().describe_app_attributes(listing)
    return codes


print(json.dumps({'drive': drive, 'auth': auth}[MODE]()))
