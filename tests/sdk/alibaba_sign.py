"""Prints the official Alibaba SDK's V3 Authorization headers for fixed
requests (tests/conformance_alibaba.rs compares keysmith's signer to them).

argv[1]: JSON list of {method, path, query, headers, payload, ak, secret};
payload is the body text, hashed with the SDK's own Utils.hash.
Prints a JSON list of {authorization, payload_hash}.
"""
import json
import sys

from alibabacloud_tea_openapi.utils import Utils
from darabonba.request import DaraRequest

ALGORITHM = 'ACS3-HMAC-SHA256'


def sign(case):
    request = DaraRequest()
    request.method = case['method']
    request.pathname = case['path']
    request.query = dict(case['query'])
    request.headers = dict(case['headers'])
    payload_hash = Utils.hash(case['payload'].encode('utf-8'), ALGORITHM).hex()
    authorization = Utils.get_authorization(
        request, ALGORITHM, payload_hash, case['ak'], case['secret'])
    return {'authorization': authorization, 'payload_hash': payload_hash}


print(json.dumps([sign(case) for case in json.loads(sys.argv[1])]))
